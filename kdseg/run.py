"""Train and evaluate one run: (dataset, budget split, method variant, seed, scale) -> DIR.

Writes, atomically, ``DIR/metrics.json`` (mIoU, per-class IoU, the resolved config, wall time,
parameter count and inference latency of the deployed network and, for every method but
Sup-only, its inference parity with a Sup-only network), ``DIR/model.pt`` (the deployed
network's ``state_dict``, loadable with ``torch.load(weights_only=True)``) and the training log
``DIR/train_log.jsonl``. The checkpoint in DIR lets an interrupted run resume.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdseg.budgets import Split
from kdseg.datasets.semantickitti_labels import CLASS_NAMES, NUM_CLASSES
from kdseg.datasets.splits import split_frames
from kdseg.errors import ConfigError
from kdseg.evaluator import ConfusionMatrix
from kdseg.guidance import FEATURES_2D, GuidanceStore
from kdseg.io import atomic_open, write_json
from kdseg.lidar_data import (
    MIX_PARTNERS,
    AugmentConfig,
    FrameStore,
    LidarBatches,
    class_frequencies,
)
from kdseg.methods.base import build_method, method_class
from kdseg.scales import get_scale
from kdseg.seeding import seed_everything
from kdseg.segmenter import Segmenter, build_segmenter
from kdseg.sparse import resolve_backend
from kdseg.tracking import JsonlTracker, MultiTracker, Tracker
from kdseg.trainer import OPERATIONAL_KEYS, Trainer, TrainerConfig


def evaluation_frames(root: str | Path, max_frames: int | None) -> list[tuple[str, int]]:
    """Validation frames, evenly thinned to ``max_frames`` when given."""
    frames = split_frames(root, "val")
    if max_frames is not None and len(frames) > max_frames:
        keep = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in keep]
    return frames


def evaluate_network(
    net: Segmenter, store: FrameStore, frames: list[tuple[str, int]]
) -> ConfusionMatrix:
    """Confusion matrix of ``net`` over ``frames`` (dense ground truth, no augmentation)."""
    cm = ConfusionMatrix(NUM_CLASSES)
    device = next(net.parameters()).device
    for frame in frames:
        points, labels = store.get(frame, "eval")
        pred = net.predict(torch.from_numpy(points).to(device))
        cm.update(pred.cpu().numpy(), labels)
    return cm


def _timed_predict(net: Segmenter, cloud: torch.Tensor) -> float:
    """Wall time (ms) of one ``net.predict(cloud)`` (CUDA synchronised)."""
    cuda = cloud.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    net.predict(cloud)
    if cuda:
        torch.cuda.synchronize()
    return 1000.0 * (time.perf_counter() - t0)


def inference_parity(
    net: Segmenter, store: FrameStore, frames: list[tuple[str, int]], repeats: int = 3
) -> dict[str, float]:
    """Parameters and latency of ``net`` against a Sup-only network of the same backbone.

    The reference is a fresh segmenter of ``net``'s architecture (:meth:`Segmenter.spec`:
    backbone, classes, voxel size or range image, coordinate scale; weights do not change the
    cost of the network). Both predict the
    same ``frames`` ``repeats`` times, interleaved in this process (which of the two goes first
    alternates from one timed frame to the next), after one warm-up each; latencies are
    medians, in ms.
    """
    device = next(net.parameters()).device
    ref = build_segmenter(**net.spec()).to(device)
    ref.eval()
    clouds = [torch.from_numpy(store.get(f, "eval")[0]).to(device) for f in frames]
    net.predict(clouds[0])
    ref.predict(clouds[0])
    times: dict[str, list[float]] = {"net": [], "ref": []}
    for k, cloud in enumerate(clouds * repeats):
        order = (("net", net), ("ref", ref)) if k % 2 == 0 else (("ref", ref), ("net", net))
        for name, model in order:
            times[name].append(_timed_predict(model, cloud))
    n = sum(p.numel() for p in net.parameters())
    n0 = sum(p.numel() for p in ref.parameters())
    t, t0 = float(np.median(times["net"])), float(np.median(times["ref"]))
    return {
        "parameters": n,
        "parameters_sup_only": n0,
        "parameters_ratio": n / n0,
        "latency_ms": t,
        "latency_sup_only_ms": t0,
        "latency_ratio": t / t0,
        "frames": len(frames),
        "repeats": repeats,
    }


def guard_resume(out: Path, checkpoint: Path, resolved: dict[str, Any]) -> bool:
    """Decide whether the run in ``out`` resumes; make ``out`` belong to this configuration.

    A run folder belongs to one configuration: the one last started in it, recorded in
    ``out/run_config.json``. A checkpoint on disk is that of an interrupted run (a finished run
    removes its own, :meth:`Trainer.fit`); it is resumed when it was written under the same
    configuration (up to the trainer keys that do not change the numbers, such as
    ``log_every``). A checkpoint of another configuration is discarded, with a note on stderr
    naming what differs, and the run trains from scratch; so does a run without checkpoint, and
    the training log of the earlier attempt is cleared. The previous results (``metrics.json``,
    ``model.pt``) stay until the new ones replace them (atomically, at the end).

    Returns:
        True when the checkpoint is to be resumed.
    """
    path = out / "run_config.json"
    current = json.loads(json.dumps(resolved, default=str))
    resume = checkpoint.is_file()
    if resume and path.is_file():
        diff = _differences(_read_json(path), current)
        if diff:
            print(
                f"{checkpoint}: discarding the checkpoint of another configuration (differs in "
                f"{diff}); training from scratch",
                file=sys.stderr,
            )
            checkpoint.unlink()
            resume = False
    log = out / "train_log.jsonl"
    if not resume and log.exists():
        log.unlink()
    write_json(path, current)
    return resume


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or ``{}`` when it is unreadable (it then differs)."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Top-level keys whose values differ, ignoring the operational trainer keys."""

    def numbers_only(config: dict[str, Any]) -> dict[str, Any]:
        trainer = config.get("trainer")
        if isinstance(trainer, dict):
            trainer = {k: v for k, v in trainer.items() if k not in OPERATIONAL_KEYS}
            return {**config, "trainer": trainer}
        return config

    a, b = numbers_only(saved), numbers_only(current)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


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
    features_dir: str | Path | None = None,
    schedule: float = 1.0,
) -> dict[str, Any]:
    """Train ``method`` on ``split`` and evaluate it on the validation sequences.

    ``schedule``: multiplier of the scale's ``iterations`` and ``warmup_iters`` (rounded; e.g.
    0.5 or 2 for a convergence study); explicit ``trainer_overrides`` win.

    ``features_dir``: the 2D feature cache (``kdseg features``) a method that requires
    ``features_2d`` (IGNet) trains with; its width sets the method option ``feature_dim_2d``.
    Returns the metrics dictionary that is also written to ``out_dir/metrics.json``. ``tracker``
    receives params and per-iteration losses; its owner finishes it.

    Raises:
        ConfigError: ``features_dir`` is missing for a method that requires 2D features, or the
            cache's feature width contradicts an explicit ``feature_dim_2d``.
    """
    out = Path(out_dir)
    run_scale = get_scale(scale)
    opts = {**run_scale.method_defaults, **(options or {})}
    guidance_info: dict[str, Any] = {}
    if FEATURES_2D in method_class(method).requires:
        if features_dir is None:
            raise ConfigError(
                "features_dir",
                f"method {method!r} requires per-point 2D features ({FEATURES_2D!r}): give a "
                "feature cache (kdseg train --features DIR, from `kdseg features`)",
            )
        cache = GuidanceStore(features_dir)  # fails early, naming the manifest
        if opts.setdefault("feature_dim_2d", cache.feature_dim) != cache.feature_dim:
            raise ConfigError(
                f"{method}.feature_dim_2d",
                f"is {opts['feature_dim_2d']} but the cache {features_dir} holds "
                f"{cache.feature_dim}-channel features",
            )
        guidance_info = {
            "features_dir": str(features_dir),
            "teacher_sha256": cache.teacher_sha256,
        }
    else:
        features_dir = None  # a cache given to a method that does not use it is not loaded
    seed_everything(seed)  # the initial weights depend on the seed only
    model = build_method(method, NUM_CLASSES, opts)
    if not schedule > 0:
        raise ConfigError("schedule", f"must be > 0, got {schedule}")
    scheduled = {
        k: max(1 if k == "iterations" else 0, round(v * schedule))
        for k, v in run_scale.trainer.items()
        if k in ("iterations", "warmup_iters")
    }
    tcfg = TrainerConfig.from_dict(
        {
            **run_scale.trainer,
            **scheduled,
            "seed": seed,
            "ema_momentum": model.ema_momentum,
            "ema_warmup": model.ema_warmup,
            "ema_buffers": model.ema_buffers,
            **(trainer_overrides or {}),
        }
    )
    try:
        augment_cfg = AugmentConfig(**{**run_scale.augment, **(augment_overrides or {})})
    except TypeError as exc:
        raise ConfigError("augment", str(exc)) from None
    model.total_iterations = tcfg.iterations
    store = FrameStore(data_root)
    n_lab, n_unl = model.opts.clouds_per_batch
    batches = LidarBatches(
        store,
        split,
        labelled_per_batch=n_lab,
        unlabelled_per_batch=n_unl,
        seed=seed,
        augment_cfg=augment_cfg,
        features_dir=features_dir,
        mix_partners=MIX_PARTNERS in type(model).requires,
    )
    if model.opts.class_weighting != "none":
        freq = class_frequencies(store, split.labelled, split.supervision, NUM_CLASSES)
        model.set_class_frequencies(freq)
    val = evaluation_frames(data_root, run_scale.eval_max_frames)
    cms: dict[int, ConfusionMatrix] = {}  # id(network) -> its confusion matrix

    def evaluate(net: torch.nn.Module) -> dict[str, float]:
        assert isinstance(net, Segmenter)
        cms[id(net)] = cm = evaluate_network(net, store, val)
        return cm.compute().to_dict(CLASS_NAMES)

    log = JsonlTracker(out / "train_log.jsonl")
    trk = MultiTracker([log, tracker]) if tracker is not None else log
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
        "labelled_scans": len(split.labelled),
        "unlabelled_scans": len(split.unlabelled),
        "split_seed": split.seed,
        "schedule": schedule,
        "clouds_per_batch": [n_lab, n_unl],
        "val_frames": len(val),
        "sparse_backend": resolve_backend(device=torch.device(tcfg.device)),
        **({"guidance": guidance_info} if guidance_info else {}),
    }
    trainer = Trainer(model, batches, tcfg, out, tracker=trk, evaluate=evaluate)
    resume = guard_resume(out, trainer.checkpoint_path, resolved)
    metrics = trainer.fit(resume=resume)
    net = model.inference_network().eval()
    # one interleaved measurement gives the latency and the parity with a Sup-only network
    parity = inference_parity(net, store, val[: run_scale.latency_frames])
    latency = parity["latency_ms"]
    params = sum(p.numel() for p in net.parameters())
    networks = {
        name: {
            "miou": metrics[f"{name}/miou"],
            "accuracy": metrics[f"{name}/accuracy"],
            "per_class_iou": {n: metrics[f"{name}/iou/{n}"] for n in CLASS_NAMES},
        }
        for name in model.evaluation_networks()
    }
    result = {
        "miou": metrics["miou"],
        "accuracy": metrics["accuracy"],
        "per_class_iou": {n: metrics[f"iou/{n}"] for n in CLASS_NAMES},
        "confusion_matrix": cms[id(net)].matrix.tolist(),
        "deployed": model.deployed,
        "network": net.spec(),
        "networks": networks,
        "wall_time_s": metrics["wall_time_s"],
        "parameters": params,
        "inference_latency_ms": latency,
        "config": resolved,
        "parity": parity,
    }
    with atomic_open(out / "model.pt", "wb") as fh:
        torch.save(net.state_dict(), fh)
    write_json(out / "metrics.json", result)
    logged = {"parameters": params, "inference_latency_ms": latency}
    logged |= {f"parity/{k}": float(parity[k]) for k in ("parameters_ratio", "latency_ratio")}
    trk.log_metrics(logged)
    log.finish()  # the caller owns `tracker` and finishes it
    return result
