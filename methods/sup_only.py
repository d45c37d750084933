"""Sup-only: the backbone trained on the labelled points of the labelled scans only."""

from __future__ import annotations

import torch

from kdseg.lidar_data import LidarBatch
from kdseg.losses import cross_entropy, lovasz_softmax

from .base import Method, Options, register_method


def supervised_terms(
    opts: Options,
    logits: torch.Tensor,
    labels: torch.Tensor,
    class_weight: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """CE (per-class weighted when ``class_weight (K,)`` is given) plus the weighted
    Lovász-softmax on the labelled rows of ``logits (M, K)``/``labels (M,)``."""
    terms = {"sup_ce": cross_entropy(logits, labels, class_weight)}
    if opts.lovasz_weight > 0:
        terms["sup_lovasz"] = opts.lovasz_weight * lovasz_softmax(logits, labels)
    return terms


@register_method("sup_only")
class SupOnly(Method):
    """Supervised baseline: cross-entropy (and optionally Lovász) on labelled points."""

    def training_step(self, batch: LidarBatch, step: int) -> dict[str, torch.Tensor]:
        out = self.student([c.points for c in batch.labelled])
        return self.supervised(out.logits, torch.cat([c.labels for c in batch.labelled]))
