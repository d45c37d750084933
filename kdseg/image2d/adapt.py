"""Unsupervised adaptation of the 2D teacher to the target camera: EMA-teacher self-training
with class-wise confidence thresholds (CBST-style thresholds, DAFormer-style EMA teacher).

Per step ``k``:

1. a labelled source batch ``(x_s, y_s)`` (augmented as in source training) and an unlabelled
   target batch: random scale/crop/flip of ``image_2`` of the *training* sequences, as a clean
   view ``x_t`` and a colour-jittered view ``x̃_t`` (``student_jitter``);
2. the EMA teacher predicts ``p = softmax(f_ema(x_t))``; pixel ``u`` gets the pseudo-label
   ``ŷ_u = argmax p_u`` if ``max p_u ≥ τ_{ŷ_u}``, else ignore;
3. the student minimises ``λ_s CE(f(x_s), y_s) + λ_t CE(f(x̃_t), ŷ)`` (one forward of both
   batches, so BatchNorm sees both domains) with AdamW; then ``θ_ema ← m θ_ema + (1−m) θ``.

The loop is the suite's Trainer (:class:`kdseg.image2d.trainers.SelfTraining`): it owns the
optimizer, the poly learning rate, the EMA teacher and the checkpoints.

Class thresholds ``τ_c = min(q_c, threshold_max)``, where ``q_c`` is the confidence at the top-p
quantile of the EMA teacher's pixels predicted as ``c`` over all target training images
(CBST's class-balanced rule), recomputed every ``threshold_refresh`` steps. ``labels_2`` is
never read here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kdseg import IGNORE_INDEX
from kdseg.ema import EmaTeacher

from .data import load_target_images, source_batch, target_batch
from .options import TeacherOptions
from .train import predict
from .trainers import SelfTraining, fit_phase


@torch.no_grad()
def class_thresholds(
    model: nn.Module,
    images: torch.Tensor,
    top_p: float,
    cap: float,
    num_classes: int,
    batch: int = 8,
) -> np.ndarray:
    """Per-class confidence thresholds ``(K,)`` float64 from uint8 ``images`` ``(N, 3, H, W)``.

    ``τ_c`` = the ``(1 − top_p)`` quantile of the max-softmax confidence of the pixels predicted
    ``c``, capped at ``cap``; a class predicted nowhere gets ``cap``.
    """
    confs, preds = [], []
    for i in range(0, images.shape[0], batch):
        conf, pred = predict(model, images[i : i + batch], batch).max(dim=1)
        confs.append(conf.reshape(-1).numpy())
        preds.append(pred.reshape(-1).numpy().astype(np.uint8))
    conf_all, pred_all = np.concatenate(confs), np.concatenate(preds)
    out = np.full(num_classes, cap, dtype=np.float64)
    for c in range(num_classes):
        sel = conf_all[pred_all == c]
        if sel.size:
            out[c] = min(float(np.quantile(sel, 1.0 - top_p)), cap)
    return out


def pseudo_labels(probs: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """``(B, K, H, W)`` probabilities -> ``(B, H, W)`` int64 labels, 255 below the class threshold
    ``thresholds`` ``(K,)`` of the predicted class."""
    conf, pred = probs.max(dim=1)
    keep = conf >= thresholds.to(conf.dtype)[pred]
    return torch.where(keep, pred, torch.full_like(pred, IGNORE_INDEX))


def self_train(
    model: nn.Module,
    dataset_root: str | Path,
    train_sequences: tuple[str, ...] | list[str],
    src_images: torch.Tensor,
    src_labels: torch.Tensor,
    options: TeacherOptions,
    out_dir: str | Path,
) -> tuple[nn.Module, dict[str, Any]]:
    """Adapt ``model`` (trained on the source) to ``image_2`` of ``train_sequences`` through
    the Trainer (folder ``out_dir``: log, checkpoint while unfinished).

    Returns:
        ``(the EMA teacher, log)``; the log holds the last class thresholds, the mean fraction
        of target pixels that got a pseudo-label and first/last losses.
    """
    target = load_target_images(dataset_root, train_sequences)
    k = int(model.num_classes)
    aug = options.augment()
    b = options.batch_size

    def thresholds(teacher: nn.Module, images: torch.Tensor) -> torch.Tensor:
        thr = class_thresholds(
            teacher, images, options.pseudo_top_p, options.threshold_max, k, options.eval_batch
        )
        return torch.from_numpy(thr).float()

    def batches(step: int) -> Any:
        # source steps continue the source stream so no batch repeats one of source training
        xs, ys = source_batch(
            src_images, src_labels, aug, b, options.seed, options.source_iters + step
        )
        return (xs, ys), target_batch(target, aug, b, options.seed, step)

    method = SelfTraining(model, target, options, thresholds, pseudo_labels)
    if options.adapt_iters == 0:
        teacher: nn.Module = EmaTeacher(model, options.ema_momentum).teacher
    else:
        trainer = fit_phase(
            method, batches, options, options.adapt_iters, options.adapt_lr, Path(out_dir)
        )
        assert trainer.teacher is not None
        teacher = trainer.teacher.network
    log = {
        "method": "ema_self_training_classwise_thresholds",
        "num_target_images": int(target.shape[0]),
        "thresholds": method.thresholds.tolist(),
        "pseudo_label_fraction_mean": method.kept_fraction(),
        "loss_first_last": method.first_last(),
    }
    return teacher, log
