"""Train and evaluate one run: (dataset, budget split, method variant, seed, scale) -> DIR.

Writes ``DIR/run_config.json`` when an attempt starts, the local log ``DIR/train_log.jsonl``
(losses per step, tags, the final status: ``FINISHED``, ``KILLED`` on SIGINT/SIGTERM, ``FAILED``)
and, when training and evaluation are done, atomically: ``DIR/metrics.json`` (the run record,
:class:`kdseg.record.RunRecord`) and ``DIR/model.pt`` (the deployed network's ``state_dict``,
loadable with ``torch.load(weights_only=True)``). The checkpoint in DIR lets an interrupted run
resume. The run never talks to MLflow: the tracking job logs it from these files
(:mod:`kdseg.tracking.sync`). Nothing here depends on which method runs: its inputs come from
:mod:`kdseg.inputs`, its teacher from :mod:`kdseg.teachers`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from kdseg.budgets import Split
from kdseg.datasets.lidar_layouts import LidarLayout, open_layout
from kdseg.errors import ConfigError
from kdseg.evaluator import ConfusionMatrix
from kdseg.inputs import BoundInput, RunContext, bind_inputs
from kdseg.io import atomic_open
from kdseg.lidar_data import AugmentConfig, FrameStore, LidarBatches, class_frequencies
from kdseg.lidar_eval import evaluate_network, evaluation_frames, inference_parity
from kdseg.methods.base import Method, build_method, method_class
from kdseg.options import build as build_options
from kdseg.record import Environment, RunRecord
from kdseg.run_folder import RUN_LOG, attempt_id, guard_resume
from kdseg.scales import get_scale
from kdseg.seeding import seed_everything
from kdseg.segmenter import Segmenter, build_segmenter
from kdseg.sparse import resolve_backend
from kdseg.tracking.base import MultiTracker, Tracker
from kdseg.tracking.jsonl import ATTEMPT_TAG, JsonlTracker
from kdseg.trainer import Trainer, TrainerConfig

__all__ = ["evaluate_network", "evaluation_frames", "inference_parity", "train_run"]


def method_options(
    cls: type[Method], explicit: Mapping[str, Any], inputs: Mapping[str, BoundInput]
) -> dict[str, Any]:
    """The options of a run: ``explicit`` (scale defaults and the variant's options) plus the
    options its inputs fix (:meth:`Method.options_from_inputs`); an explicit value that
    contradicts an input is a ``ConfigError`` naming ``<method>.<key>``."""
    opts = dict(explicit)
    for key, value in cls.options_from_inputs(inputs).items():
        if key in opts and opts[key] != value:
            raise ConfigError(
                f"{cls.name}.{key}",
                f"is {opts[key]!r} but the run's inputs give {value!r} "
                f"({', '.join(f'{n}: {b.record()}' for n, b in inputs.items())})",
            )
        opts[key] = value
    return opts


def parity_reference(model: Method, net: Segmenter) -> tuple[Segmenter, str]:
    """The network ``net``'s inference parity is measured against, and what it is: a fresh
    network of ``net``'s spec, or the deployed network of ``Method.parity_reference`` built
    with the run's options that it shares."""
    name = type(model).parity_reference
    if name is None:
        return build_segmenter(**net.spec()), "network spec"
    ref_cls = method_class(name)
    known = {f.name for f in dataclasses.fields(ref_cls.Options)}
    shared = {k: v for k, v in asdict(model.opts).items() if k in known}
    num_classes = int(net.spec()["num_classes"])
    return build_method(name, num_classes, shared).inference_network(), f"method {name}"


def check_inputs_supported(layout: LidarLayout, method: str, requires: frozenset[str]) -> None:
    """Refuse, before training, a method whose inputs the dataset's format cannot feed (e.g.
    IGNet's camera features on nuScenes): ``ConfigError`` naming the method."""
    missing = sorted(requires & layout.unsupported_inputs)
    if missing:
        raise ConfigError(
            "--method",
            f"{method} needs {missing}, which the {layout.format} format does not provide",
        )


def train_run(
    data_root: str | Path,
    split: Split,
    method: str,
    out_dir: str | Path,
    scale: str = "default",
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    trainer_overrides: Mapping[str, Any] | None = None,
    augment_overrides: Mapping[str, Any] | None = None,
    tracker: Tracker | None = None,
    variant: str | None = None,
    inputs: Mapping[str, str | None] | None = None,
    schedule: float = 1.0,
    data_format: str = "semantickitti",
    data_version: str | None = None,
) -> dict[str, Any]:
    """Train ``method`` on ``split`` and evaluate it on the validation sequences.

    ``inputs``: ``{provider name: value}`` of ``kdseg train --input NAME=VALUE``; the inputs the
    method ``requires`` are bound (:func:`kdseg.inputs.bind_inputs`), others are ignored.
    ``schedule``: multiplier of the scale's ``iterations`` and ``warmup_iters`` (rounded; e.g.
    0.5 or 2 for a convergence study); explicit ``trainer_overrides`` win. ``data_format`` and
    ``data_version`` choose the dataset's layout (:func:`kdseg.datasets.lidar_layouts.open_layout`:
    its frames, classes and files). ``tracker`` also
    receives params and per-iteration losses (beside the local log); its owner finishes it.

    Returns the run record as written to ``out_dir/metrics.json``.

    Raises:
        ConfigError: a required input is missing or contradicts an explicit option, an option
            or setting is unknown or ill-typed.
    """
    out = Path(out_dir)
    run_scale = get_scale(scale)
    cls = method_class(method)
    layout = open_layout(data_root, data_format, data_version)
    check_inputs_supported(layout, method, cls.requires)
    classes = layout.class_names
    bound = bind_inputs(cls.requires, inputs or {}, RunContext(method, Path(data_root), split))
    opts = method_options(cls, {**run_scale.defaults_for(cls.Options), **(options or {})}, bound)
    seed_everything(seed)  # the initial weights depend on the seed only
    model = build_method(method, len(classes), opts)
    if not schedule > 0:
        raise ConfigError("schedule", f"must be > 0, got {schedule}")
    scheduled = {
        k: max(1 if k == "iterations" else 0, round(v * schedule))
        for k, v in run_scale.trainer.items()
        if k in ("iterations", "warmup_iters")
    }
    tcfg = TrainerConfig.from_dict(
        {**run_scale.trainer, **scheduled, "seed": seed, **(trainer_overrides or {})}
    )
    augment_cfg = build_options(
        AugmentConfig,
        {**run_scale.augment, **(augment_overrides or {})},
        prefix="augment.",
        what="augmentation",
    )
    model.total_iterations = tcfg.iterations
    store = FrameStore(layout)
    n_lab, n_unl = model.opts.clouds_per_batch
    batches = LidarBatches(
        store, split, n_lab, n_unl, seed=seed, augment_cfg=augment_cfg, inputs=list(bound.values())
    )
    if model.opts.class_weighting != "none":
        freq = class_frequencies(store, split.labelled, split.supervision, len(classes))
        model.set_class_frequencies(freq)
    val = evaluation_frames(layout, run_scale.eval_max_frames)
    cms: dict[int, ConfusionMatrix] = {}  # id(network) -> its confusion matrix

    def evaluate(net: torch.nn.Module) -> dict[str, float]:
        assert isinstance(net, Segmenter)
        cms[id(net)] = cm = evaluate_network(net, store, val)
        return cm.compute().to_dict(classes)

    resolved = {
        "method": method,
        "variant": variant or method,
        "options": asdict(model.opts),
        "trainer": tcfg.to_dict(),
        "augment": asdict(augment_cfg),
        "dataset": split.dataset,
        "budget": split.budget,
        "supervision": split.supervision,
        "seed": seed,
        "scale": scale,
        "data_root": str(data_root),
        **(
            {"data_format": layout.format, "data_version": layout.version}
            if data_format != "semantickitti"
            else {}
        ),
        "labelled_scans": len(split.labelled),
        "unlabelled_scans": len(split.unlabelled),
        "split_seed": split.seed,
        "schedule": schedule,
        "clouds_per_batch": [n_lab, n_unl],
        "val_frames": len(val),
        "sparse_backend": resolve_backend(device=torch.device(tcfg.device)),
        **({"inputs": {n: b.record() for n, b in bound.items()}} if bound else {}),
    }
    log = JsonlTracker(out / RUN_LOG)
    trk = MultiTracker([log, tracker]) if tracker is not None else log
    trainer = Trainer(model, batches, tcfg, out, tracker=trk, evaluate=evaluate, inputs=bound)
    resume = guard_resume(out, trainer.checkpoint_path, resolved)
    attempt, new = attempt_id(out, resume)
    env = Environment.current(tcfg.device, torch.__version__, torch.get_num_threads())
    log.set_tags(({ATTEMPT_TAG: attempt} if new else {}) | env.tags())
    try:
        record = _train_and_record(model, trainer, store, val, cms, resolved, resume, run_scale)
        record = dataclasses.replace(record, environment=env, attempt=attempt)
        with atomic_open(out / "model.pt", "wb") as fh:
            torch.save(model.inference_network().state_dict(), fh)
        record.write(out / "metrics.json")
    except BaseException as exc:
        log.finish("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    log.finish("FINISHED")  # the caller owns `tracker` and finishes it
    return record.to_dict()


def _train_and_record(
    model: Method,
    trainer: Trainer,
    store: FrameStore,
    val: list[tuple[str, int]],
    cms: dict[int, ConfusionMatrix],
    resolved: dict[str, Any],
    resume: bool,
    run_scale: Any,
) -> RunRecord:
    """Fit, then measure the deployed network's parity; the run record (without environment)."""
    metrics = trainer.fit(resume=resume)
    net = model.inference_network().eval()
    # one interleaved measurement gives the latency and the parity with the reference network
    classes = store.class_names
    ref, reference = parity_reference(model, net)
    parity = inference_parity(net, ref, store, val[: run_scale.latency_frames], 3, reference)
    networks = {
        name: {
            "miou": metrics[f"{name}/miou"],
            "accuracy": metrics[f"{name}/accuracy"],
            "per_class_iou": {n: metrics[f"{name}/iou/{n}"] for n in classes},
        }
        for name in model.evaluation_networks()
    }
    return RunRecord(
        miou=metrics["miou"],
        accuracy=metrics["accuracy"],
        per_class_iou={n: metrics[f"iou/{n}"] for n in classes},
        confusion_matrix=cms[id(net)].matrix.tolist(),
        deployed=model.deployed,
        network=net.spec(),
        networks=networks,
        wall_time_s=metrics["wall_time_s"],
        parameters=sum(p.numel() for p in net.parameters()),
        inference_latency_ms=float(parity["latency_ms"]),
        config=resolved,
        parity=parity,
    )
