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


def feature_distillation(
    student: torch.Tensor, target: torch.Tensor, kind: str = "mse"
) -> torch.Tensor:
    """Feature distillation from frozen targets, one row per point.

    ``student (M, C)`` (e.g. the guidance head's output), ``target (M, C)`` (2D teacher features;
    detached here: stop-gradient). ``"mse"``: mean over rows of the squared L2 distance
    ``||s_i - t_i||²`` (summed over channels); ``"cosine"``: mean of ``1 - cos(s_i, t_i)``.
    0 (with a graph) when ``M == 0``.
    """
    if student.shape != target.shape:
        raise ValueError(f"student {tuple(student.shape)} and target {tuple(target.shape)} differ")
    if student.shape[0] == 0:
        return student.sum() * 0.0
    target = target.detach()
    if kind == "mse":
        return (student - target).pow(2).sum(dim=1).mean()
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(student, target, dim=1, eps=1e-8)).mean()
    raise ValueError(f"feature distillation kind must be 'mse' or 'cosine', got {kind!r}")


def one_way_info_nce(
    anchors: torch.Tensor,
    keys: torch.Tensor,
    temperature: float = 0.07,
    classes: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE from anchors to frozen keys ("one-way": no gradient reaches ``keys``).

    ``anchors (B, D)`` (3D embeddings), ``keys (B, D)`` (2D embeddings; row ``i`` is anchor ``i``'s
    positive, every other row a negative); both are L2-normalised here, similarities are cosines
    divided by ``temperature``. Loss ``-mean_i log(exp(s_ii) / Σ_j exp(s_ij))``. With ``classes
    (B,)`` the positives of anchor ``i`` are all keys ``j`` of its class:
    ``-mean_i log(Σ_{j: c_j = c_i} exp(s_ij) / Σ_j exp(s_ij))``. 0 (with a graph) when ``B == 0``.
    """
    if anchors.shape != keys.shape:
        raise ValueError(f"anchors {tuple(anchors.shape)} and keys {tuple(keys.shape)} differ")
    if anchors.shape[0] == 0:
        return anchors.sum() * 0.0
    z = F.normalize(anchors, dim=1)
    u = F.normalize(keys.detach(), dim=1)
    logits = z @ u.T / temperature  # (B, B)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    if classes is None:
        return -log_prob.diagonal().mean()
    positive = classes[:, None] == classes[None, :]
    return -torch.logsumexp(log_prob.masked_fill(~positive, float("-inf")), dim=1).mean()
