"""Source training, evaluation and the ``train_teacher`` entry point of the 2D teacher.

``train_teacher`` (1) trains the network with CE on the labelled synthetic source images,
(2) measures mIoU on the target camera images of the validation sequences (``labels_2``),
(3) adapts to the target camera without labels (:mod:`kdseg.image2d.adapt`) on ``image_2`` of the
training sequences only, (4) measures again and writes ``teacher.pt`` and ``metrics.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdseg.datasets.semantickitti import SemanticKITTI
from kdseg.datasets.semantickitti_labels import CLASS_NAMES
from kdseg.datasets.splits import sequence_split
from kdseg.evaluator import ConfusionMatrix, SegMetrics
from kdseg.io import atomic_open, write_json
from kdseg.seeding import seed_everything

from .data import load_source, load_target_eval, source_batch
from .model import (
    build_model,
    count_parameters,
    file_sha256,
    load_teacher,
    pad_to_stride,
    save_teacher,
)
from .options import TeacherOptions
from .trainers import SourceTraining, fit_phase, supervised_loss

TEACHER_FILE = "teacher.pt"
METRICS_FILE = "metrics.json"
SOURCE_PHASE = "source"  # folders of the two training phases (logs; checkpoints while running)
ADAPT_PHASE = "adaptation"

__all__ = ["adopt_teacher", "evaluate", "predict", "supervised_loss", "train_teacher"]


def train_source(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    options: TeacherOptions,
    out_dir: str | Path,
) -> list[float]:
    """Supervised training on the source domain through the Trainer (folder ``out_dir``:
    log, checkpoint while unfinished); returns the first and last step's loss."""
    if options.source_iters == 0:
        return []
    aug = options.augment()
    method = SourceTraining(model)

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return source_batch(images, labels, aug, options.batch_size, options.seed, step)

    fit_phase(method, batches, options, options.source_iters, options.lr, Path(out_dir))
    return method.first_last()


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch: int = 8) -> torch.Tensor:
    """Class probabilities ``(N, K, H, W)`` float32 of uint8 images ``(N, 3, H, W)``
    (eval mode; images are padded to the network stride and the output cropped back)."""
    model.eval()
    h, w = images.shape[-2:]
    outs = []
    for i in range(0, images.shape[0], batch):
        x = pad_to_stride(images[i : i + batch].float() / 255.0)
        outs.append(model(x)["logits"][..., :h, :w].softmax(dim=1))
    return torch.cat(outs)


@torch.no_grad()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 8
) -> SegMetrics:
    """Scores (the suite's :class:`ConfusionMatrix`) of the argmax on ``labels`` ``(N, H, W)``."""
    cm = ConfusionMatrix(len(CLASS_NAMES))
    for i in range(0, images.shape[0], batch):
        probs = predict(model, images[i : i + batch], batch)
        cm.update(probs.argmax(dim=1), labels[i : i + batch].long())
    return cm.compute()


def _scores(metrics: SegMetrics) -> dict[str, Any]:
    flat = metrics.to_dict(CLASS_NAMES)
    return {
        "miou": metrics.miou,
        "accuracy": metrics.accuracy,
        "per_class_iou": {k[4:]: v for k, v in flat.items() if k.startswith("iou/")},
    }


def has_target_labels(dataset_root: str | Path, sequences: list[str]) -> bool:
    """Whether every frame of ``sequences`` has its dense 2D labels ``labels_2``."""
    ds = SemanticKITTI(dataset_root)
    frames = [(s, i) for s in sequences for i in ds.frame_ids(s)]
    return bool(frames) and all(ds.path(s, "labels_2", i).is_file() for s, i in frames)


def train_teacher(
    dataset_root: str | Path,
    out_dir: str | Path,
    options: TeacherOptions | None = None,
    source_root: str | Path | None = None,
) -> dict[str, Any]:
    """Train (source), evaluate, adapt (target ``image_2`` of the training sequences), evaluate.

    The source images (``<root>/source/{images,labels}``) come from ``source_root`` when given
    (real data: the embedded synthetic street data), else from ``dataset_root``. Evaluation needs
    ``labels_2`` of the validation sequences; without them (real SemanticKITTI) the scores are
    ``None`` and the teacher is still trained and adapted.

    Writes ``out_dir/teacher.pt`` (``torch.load(weights_only=True)``-loadable, see
    :func:`kdseg.image2d.model.save_teacher`) and then ``out_dir/metrics.json``, both atomically.
    The target labels ``labels_2`` are read for the validation sequences only (evaluation).

    Returns:
        The metrics dict written to ``metrics.json``: mIoU/accuracy/per-class IoU before and
        after adaptation (``after`` is ``None`` when ``adaptation == "none"``), options, wall
        times (seconds), parameter count, losses and the checkpoint's SHA-256.
    """
    from .adapt import self_train  # local: adapt imports this module

    options = options or TeacherOptions()
    out_dir = Path(out_dir)
    t_start = time.perf_counter()
    seed_everything(options.seed)
    split = sequence_split(dataset_root)
    src_images, src_labels = load_source(source_root if source_root is not None else dataset_root)
    scored = has_target_labels(dataset_root, split["val"])
    val_images, val_labels = (
        load_target_eval(dataset_root, split["val"]) if scored else (None, None)
    )

    def score(net: torch.nn.Module) -> SegMetrics | None:
        if val_images is None or val_labels is None:
            return None
        return evaluate(net, val_images, val_labels, options.eval_batch)

    model = build_model(options.arch, options.feature_dim)

    t0 = time.perf_counter()
    src_losses = train_source(model, src_images, src_labels, options, out_dir / SOURCE_PHASE)
    t_source = time.perf_counter() - t0
    before = score(model)

    after, t_adapt, adapt_log = None, 0.0, {}
    if options.adaptation == "self_training":
        t0 = time.perf_counter()
        model, adapt_log = self_train(
            model,
            dataset_root,
            split["train"],
            src_images,
            src_labels,
            options,
            out_dir / ADAPT_PHASE,
        )
        t_adapt = time.perf_counter() - t0
        after = score(model)
    adapted = options.adaptation == "self_training"

    save_teacher(out_dir / TEACHER_FILE, model, options.arch, options.to_dict())
    final = after if after is not None else before
    metrics: dict[str, Any] = {
        "source": "trained",
        "source_root": str(Path(source_root if source_root is not None else dataset_root)),
        "scored": scored,
        "miou_before_adaptation": before.miou if before is not None else None,
        "miou_after_adaptation": after.miou if after is not None else None,
        "miou": final.miou if final is not None else None,
        "before_adaptation": _scores(before) if before is not None else None,
        "after_adaptation": _scores(after) if after is not None else None,
        "adaptation": options.adaptation,
        "options": options.to_dict(),
        "parameters": count_parameters(model),
        "wall_time_s": {
            "source_training": t_source,
            "adaptation": t_adapt,
            "total": time.perf_counter() - t_start,
        },
        "source_loss_first_last": src_losses,
        "adaptation_log": adapt_log,
        "eval_sequences": list(split["val"]) if scored else [],
        "adapt_sequences": list(split["train"]) if adapted else [],
        "teacher_sha256": file_sha256(out_dir / TEACHER_FILE),
        "num_source_images": int(src_images.shape[0]),
        "num_eval_images": int(val_images.shape[0]) if val_images is not None else 0,
    }
    write_json(out_dir / METRICS_FILE, metrics)
    return metrics


def adopt_teacher(
    dataset_root: str | Path, checkpoint: str | Path, out_dir: str | Path
) -> dict[str, Any]:
    """Use a user-supplied teacher checkpoint instead of training one.

    The checkpoint is validated (:func:`kdseg.image2d.model.load_teacher` raises
    ``DataFormatError`` naming it), copied byte for byte to ``out_dir/teacher.pt`` (so the
    feature cache records the same SHA-256) and scored on the target images of the validation
    sequences when their ``labels_2`` exist (real SemanticKITTI ships none: ``miou`` is then
    ``None``). Writes ``out_dir/metrics.json``; returns its content.
    """
    t_start = time.perf_counter()
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    teacher = load_teacher(checkpoint)
    with atomic_open(out_dir / TEACHER_FILE, "wb") as fh:
        fh.write(checkpoint.read_bytes())
    split = sequence_split(dataset_root)
    scored = has_target_labels(dataset_root, split["val"])
    scores = None
    if scored:
        images, labels = load_target_eval(dataset_root, split["val"])
        scores = _scores(evaluate(teacher.model, images, labels))
    metrics: dict[str, Any] = {
        "source": "checkpoint",
        "checkpoint": str(checkpoint.resolve()),
        "miou_before_adaptation": None,
        "miou_after_adaptation": None,
        "miou": scores["miou"] if scores else None,
        "scores": scores,
        "adaptation": "unknown (user-supplied checkpoint)",
        "arch": teacher.arch,
        "feature_dim": teacher.feature_dim,
        "options": teacher.options,
        "parameters": count_parameters(teacher.model),
        "eval_sequences": list(split["val"]) if scored else [],
        "teacher_sha256": file_sha256(out_dir / TEACHER_FILE),
        "wall_time_s": {"total": time.perf_counter() - t_start},
    }
    write_json(out_dir / METRICS_FILE, metrics)
    return metrics
