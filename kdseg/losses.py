"""Loss functions shared by the methods. Inputs are per-point (or per-pixel) rows."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdseg import IGNORE_INDEX


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean CE over rows whose label is not ignored; 0 (with a graph) when none is labelled.

    ``logits (M, K)``, ``labels (M,)`` int64 train ids (255 = ignore).
    """
    valid = labels != IGNORE_INDEX
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[valid], labels[valid])


def lovasz_softmax(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovász-softmax loss (Berman et al., CVPR 2018) over classes present in ``labels``.

    ``logits (M, K)``, ``labels (M,)`` (255 = ignore). A convex surrogate of 1 - IoU per class,
    averaged over the classes that occur in the labelled rows.
    """
    valid = labels != IGNORE_INDEX
    if not bool(valid.any()):
        return logits.sum() * 0.0
    probs = logits[valid].softmax(dim=1)
    lab = labels[valid]
    losses = []
    for c in torch.unique(lab):
        fg = (lab == c).to(probs.dtype)
        errors = (fg - probs[:, c]).abs()
        errors_sorted, order = torch.sort(errors, descending=True)
        fg_sorted = fg[order]
        gts = fg_sorted.sum()
        intersection = gts - fg_sorted.cumsum(0)
        union = gts + (1.0 - fg_sorted).cumsum(0)
        jaccard = 1.0 - intersection / union
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        losses.append(torch.dot(errors_sorted, jaccard))
    return torch.stack(losses).mean()


def softmax_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean squared error between softmax outputs (Mean Teacher consistency), ``(M, K)`` each."""
    return F.mse_loss(student_logits.softmax(dim=1), teacher_logits.detach().softmax(dim=1))


def confident_pseudo_labels(teacher_logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """Argmax of the teacher where its max softmax probability >= ``threshold``, else ignore."""
    conf, pred = teacher_logits.detach().softmax(dim=1).max(dim=1)
    return torch.where(conf >= threshold, pred, torch.full_like(pred, IGNORE_INDEX))
