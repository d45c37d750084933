"""The loss terms of each continual method for one batch, wired as the official trainers wire
them (which logits, which labels, which weights), for the method classes to call.

=========== ============================================================================
method      terms at a step t >= 1 (``new``/``old``: :class:`SegmentationOutput` of the
            current and previous model on the same images; ``y``: the step's labels)
=========== ============================================================================
ft, joint   ``ce = CE(new.logits, y)``
lwf         ``ce`` + ``kd = 100 * KD(new.logits, old.logits)``
ilt         ``ce`` + ``kd = 100 * KD(...)`` + ``feature = 100 * MSE(new.body, old.body)``
mib         ``ce = UnbiasedCE(new.logits, y)`` + ``kd = 10 * UnbiasedKD(new.logits, old.logits)``
plop        ``ce = CE(new.logits, pseudo.labels) * adaptive factor`` + ``pod = POD(...)``
plop_lgkd   plop's terms + ``kd = 1 * LGKD(new.logits_small, old.logits_small, y downsampled)``
mib_lgkd    mib's ``ce`` + ``kd = 1 * LGKD(...)`` (no official preset, see presets)
=========== ============================================================================

At step 0 (no previous model) every method is plain ``CE(new.logits, y)``, as the official
trainers (unbiased CE and pseudo-labels need old classes). LGKD receives the labels *before*
pseudo-labelling (``original_labels``), downsampled by nearest to the small logits. The sum of
the returned terms is the official ``loss_tot`` (regularisers of EWC/PI/RW not included).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kdseg.continual.losses import (
    cross_entropy,
    downsample_labels,
    feature_distillation_loss,
    kd_loss,
    lgkd_loss,
    unbiased_cross_entropy,
    unbiased_kd_loss,
)
from kdseg.continual.networks import SegmentationOutput
from kdseg.continual.pod import pod_loss
from kdseg.continual.presets import (
    METHOD_WEIGHTS,
    LGKDWeights,
    MethodWeights,
    PODWeights,
    lgkd_weights,
    pod_weights,
)
from kdseg.continual.pseudo import PseudoLabels
from kdseg.errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    """A method's weights for one dataset / task.

    Attributes:
        method: key of :data:`~kdseg.continual.presets.METHOD_WEIGHTS`.
        weights: what the method's ``--method`` preset sets.
        pod: POD factors (methods with POD), else None.
        lgkd: LGKD's ``prev`` / ``novel`` weights (LGKD methods), else None.
        reduction: classification-loss reduction (``"all_pixels"`` = official).
    """

    method: str
    weights: MethodWeights
    pod: PODWeights | None = None
    lgkd: LGKDWeights | None = None
    reduction: str = "all_pixels"

    @property
    def needs_pseudo_labels(self) -> bool:
        return self.weights.classification == "pseudo_ce"


def recipe(
    method: str,
    dataset: str,
    task: str,
    prev: float | None = None,
    novel: float | None = None,
    reduction: str = "all_pixels",
) -> Recipe:
    """The official recipe of ``method`` (``ft``, ``lwf``, ``ilt``, ``mib``, ``plop``,
    ``plop_lgkd``, ``mib_lgkd``, ``joint``) on ``dataset`` / ``task``; ``prev`` / ``novel``
    override LGKD's per-setting weights (needed for settings without a script, e.g. VOC 10-1)."""
    weights = METHOD_WEIGHTS.get(method)
    if weights is None:
        raise ConfigError("method", f"unknown method {method!r}; known: {sorted(METHOD_WEIGHTS)}")
    pod = pod_weights(weights.pod_source, dataset) if weights.pod else None
    lgkd = lgkd_weights(dataset, task, prev, novel) if weights.kd_kind == "lgkd" else None
    return Recipe(method, weights, pod, lgkd, reduction)


def loss_terms(
    rec: Recipe,
    new: SegmentationOutput,
    old: SegmentationOutput | None,
    labels: torch.Tensor,
    pseudo: PseudoLabels | None = None,
) -> dict[str, torch.Tensor]:
    """Weighted loss terms of one batch; their sum is the loss to minimise.

    Args:
        rec: from :func:`recipe`.
        new: current model's output (``logits (B, C, H, W)``); old: previous model's (``C_o``
            channels, computed without gradient), or None at step 0.
        labels: ``(B, H, W)`` int64 step labels (old/future classes 0, 255 ignore).
        pseudo: PLOP's pseudo-labels of this batch
            (:func:`~kdseg.continual.pseudo.entropy_pseudo_labels` on ``old.logits``), required
            by ``plop`` / ``plop_lgkd`` at steps >= 1.

    Returns:
        ``{"ce": ..., "kd": ..., "feature": ..., "pod": ...}`` (only the method's terms).
    """
    w = rec.weights
    if old is None:
        return {"ce": cross_entropy(new.logits, labels, reduction=rec.reduction)}
    num_old = old.logits.shape[1]
    num_new = new.logits.shape[1] - num_old
    terms: dict[str, torch.Tensor] = {}
    if w.classification == "ce":
        terms["ce"] = cross_entropy(new.logits, labels, reduction=rec.reduction)
    elif w.classification == "unbiased_ce":
        terms["ce"] = unbiased_cross_entropy(new.logits, labels, num_old, rec.reduction)
    else:
        if pseudo is None:
            raise ConfigError("pseudo", f"{rec.method} needs PLOP's pseudo-labels at step >= 1")
        terms["ce"] = cross_entropy(
            new.logits, pseudo.labels, pseudo.adaptive_factor, reduction=rec.reduction
        )
    if w.kd > 0:
        if w.kd_kind == "kd":
            kd = kd_loss(new.logits, old.logits)
        elif w.kd_kind == "unbiased_kd":
            kd = unbiased_kd_loss(new.logits, old.logits)
        else:
            assert rec.lgkd is not None
            small = downsample_labels(labels, tuple(new.logits_small.shape[-2:]))
            kd = lgkd_loss(new.logits_small, old.logits_small, small, rec.lgkd.prev, rec.lgkd.novel)
        terms["kd"] = w.kd * kd
    if w.feature > 0:
        terms["feature"] = w.feature * feature_distillation_loss(new.body, old.body)
    if rec.pod is not None:
        terms["pod"] = pod_loss(
            new.pod_features(),
            old.pod_features(),
            num_old,
            num_new,
            feature_factor=rec.pod.features,
            logits_factor=rec.pod.logits,
        )
    return terms
