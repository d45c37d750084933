"""Train and evaluate one step of a continual 2D task, and summarise a task's steps.

:func:`train_step` is the continual family's run (what :mod:`kdseg.run` is to the LiDAR one):
(per-step index files, step ``t``, method variant, seed, scale) -> ``DIR`` with
``run_config.json``, the local log ``train_log.jsonl`` and, once trained and evaluated,
``metrics.json`` (the run record, :class:`kdseg.record.RunRecord`, with its ``continual``
block) and ``model.pt`` (the deployed network's state dict). Nothing here depends on which
method runs: the method's inputs come from :mod:`kdseg.inputs` (``old_model``: the previous
step's run), its teacher from :mod:`kdseg.teachers` (the old model, frozen), and the method
prepares itself for the step (:meth:`~kdseg.methods.continual.ContinualMethod.prepare`).

The task's run folder (every step's scores, the final model) is written from the steps'
folders by :func:`kdseg.continual_record.summarise_task`.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from kdseg.continual.data import (
    ImageBatches,
    ImageSet,
    augment_from_dict,
    class_names,
    evaluate,
    normalize,
    open_reader,
)
from kdseg.continual.scales import get_continual_scale
from kdseg.continual.step import FAMILY, StepContext
from kdseg.datasets.continual_metrics import step_scores
from kdseg.datasets.continual_split import load_task_split
from kdseg.errors import ConfigError
from kdseg.evaluator import ConfusionMatrix
from kdseg.inputs import RunContext, bind_inputs
from kdseg.io import atomic_open
from kdseg.methods.base import build_method, method_class
from kdseg.record import RECORD_FILE, Environment, RunRecord
from kdseg.run import method_options
from kdseg.run_folder import RUN_LOG, attempt_id, guard_resume
from kdseg.seeding import seed_everything
from kdseg.tracking.base import MultiTracker, Tracker
from kdseg.tracking.jsonl import ATTEMPT_TAG, JsonlTracker
from kdseg.trainer import Trainer, TrainerConfig

MODEL_FILE = "model.pt"
CALIBRATION_SEED = 7919  # PLOP's threshold pass draws its batches from its own stream


def _iou_by_id(channels: Sequence[int], per_class: Sequence[float]) -> dict[int, float | None]:
    return {c: (None if v != v else float(v)) for c, v in zip(channels, per_class, strict=True)}


@torch.no_grad()
def latency_ms(net: torch.nn.Module, images: ImageSet, count: int, device: str) -> float:
    """Median wall time (ms) of one forward pass of a single test image (after one warm-up)."""
    net.eval()
    times = []
    for i in range(min(count, len(images)) + 1):
        x = normalize(images.sample(i % len(images))[0][None].to(device))
        start = time.perf_counter()
        net(x)
        if i:
            times.append(1e3 * (time.perf_counter() - start))
    return float(statistics.median(times))


def train_step(
    data_root: str | Path,
    split_dir: str | Path,
    step: int,
    method: str,
    out_dir: str | Path,
    scale: str = "default",
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    trainer_overrides: Mapping[str, Any] | None = None,
    augment_overrides: Mapping[str, Any] | None = None,
    variant: str | None = None,
    inputs: Mapping[str, str | None] | None = None,
    schedule: float = 1.0,
    tracker: Tracker | None = None,
) -> dict[str, Any]:
    """Train ``method`` on step ``step`` of the task whose index files are in ``split_dir``
    and evaluate it on the step's test set (every class seen so far).

    ``inputs``: ``{provider: value}`` of ``--input NAME=VALUE`` (``old_model``: the previous
    step's run folder, none at step 0). ``schedule`` multiplies the step's epochs.

    Returns the run record as written to ``out_dir/metrics.json``.
    """
    out = Path(out_dir)
    cscale = get_continual_scale(scale)
    cls = method_class(method, family=FAMILY)
    steps = load_task_split(split_dir)
    if not 0 <= step < len(steps):
        raise ConfigError("--step", f"{split_dir} has steps 0..{len(steps) - 1}, not {step}")
    split = steps[step]
    task, dataset = split.task, split.task.dataset
    if not schedule > 0:
        raise ConfigError("schedule", f"must be > 0, got {schedule}")
    bound = bind_inputs(cls.requires, inputs or {}, RunContext(method, Path(data_root), split))
    known = {f.name for f in dataclasses.fields(cls.Options)}
    defaults = {k: v for k, v in cscale.method_defaults.items() if k in known}
    opts = method_options(cls, {**defaults, **(options or {})}, bound)
    seed_everything(seed)  # the initial weights depend on the seed only
    model = build_method(method, len(task.steps[0]), opts)
    plan = cscale.schedule(dataset, step)
    batch_size = model.opts.images_per_batch or plan.images_per_batch
    aug = augment_from_dict({**cscale.augment, **(augment_overrides or {})})
    train_set = ImageSet(open_reader(data_root, dataset, "train"), split.train, split.train_lut())
    test_set = ImageSet(open_reader(data_root, dataset, "val"), split.test, split.eval_lut())
    batches = ImageBatches(train_set, batch_size, aug, seed)
    calib = ImageBatches(train_set, batch_size, aug, seed + CALIBRATION_SEED)
    model.prepare(
        StepContext(task, step),
        bound,
        lambda: (calib(k) for k in range(calib.steps_per_epoch)),
    )
    iterations = plan.iterations(len(train_set), schedule, batch_size)
    base = {**cscale.trainer, "lr": plan.lr, "iterations": iterations, "seed": seed}
    base["warmup_iters"] = plan.warmup_iters(iterations)
    tcfg = TrainerConfig.from_dict({**base, **(trainer_overrides or {})})
    model.total_iterations = tcfg.iterations
    channels = list(split.channels)
    names_all = class_names(data_root, dataset)
    names = [names_all[c] for c in channels]
    cms: dict[int, ConfusionMatrix] = {}

    def evaluate_net(net: torch.nn.Module) -> dict[str, float]:
        cms[id(net)] = cm = evaluate(net, test_set, len(channels), aug.eval_size, 16, tcfg.device)
        return cm.compute(absent="exclude").to_dict(names)

    resolved = {
        "method": method,
        "variant": variant or method,
        "options": dataclasses.asdict(model.opts),
        "trainer": tcfg.to_dict(),
        "augment": dataclasses.asdict(aug),
        "dataset": dataset,
        "budget": task.name,
        "task": task.name,
        "setting": split.setting,
        "step": step,
        "seed": seed,
        "scale": scale,
        "data_root": str(data_root),
        "split_dir": str(split_dir),
        "schedule": schedule,
        "images_per_batch": batch_size,
        "epochs": plan.epochs * schedule,
        "train_images": len(train_set),
        "test_images": len(test_set),
        **({"inputs": {n: b.record() for n, b in bound.items()}} if bound else {}),
    }
    log = JsonlTracker(out / RUN_LOG)
    trk = MultiTracker([log, tracker]) if tracker is not None else log
    trainer = Trainer(model, batches, tcfg, out, tracker=trk, evaluate=evaluate_net, inputs=bound)
    resume = guard_resume(out, trainer.checkpoint_path, resolved)
    attempt, new = attempt_id(out, resume)
    env = Environment.current(tcfg.device, torch.__version__, torch.get_num_threads())
    log.set_tags(({ATTEMPT_TAG: attempt} if new else {}) | env.tags())
    try:
        metrics = trainer.fit(resume=resume)
        net = model.inference_network().eval()
        per_class = [metrics[f"iou/{n}"] for n in names]
        iou = _iou_by_id(channels, per_class)
        record = RunRecord(
            miou=metrics["miou"],
            accuracy=metrics["accuracy"],
            per_class_iou={n: iou[c] for n, c in zip(names, channels, strict=True)},
            confusion_matrix=cms[id(net)].matrix.tolist(),
            deployed=model.deployed,
            network=net.spec(),
            networks={"student": {"miou": metrics["miou"], "accuracy": metrics["accuracy"]}},
            wall_time_s=metrics["wall_time_s"],
            parameters=sum(p.numel() for p in net.parameters()),
            inference_latency_ms=latency_ms(net, test_set, cscale.latency_images, tcfg.device),
            config=resolved,
            environment=env,
            attempt=attempt,
            continual={
                "task": task.to_dict(),
                "step": step,
                "setting": split.setting,
                "channels": channels,
                "class_names": names,
                "scores": step_scores(task, step, iou),
                "recipe": model.recipe_record(),
            },
        )
        with atomic_open(out / MODEL_FILE, "wb") as fh:
            torch.save(net.state_dict(), fh)
        record.write(out / RECORD_FILE)
    except BaseException as exc:
        log.finish("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    log.finish("FINISHED")
    return record.to_dict()
