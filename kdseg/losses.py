"""Loss functions shared by the methods. Inputs are per-point (or per-pixel) rows."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kdseg import IGNORE_INDEX


def cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean CE over rows whose label is not ignored; 0 (with a graph) when none is labelled.

    ``logits (M, K)``, ``labels (M,)`` int64 train ids (255 = ignore); ``weight (K,)``: per-class
    weights (PyTorch's convention: the mean is weighted, ``Σ w_y CE / Σ w_y``).
    """
    valid = labels != IGNORE_INDEX
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[valid], labels[valid], weight=weight)


CLASS_WEIGHTINGS: tuple[str, ...] = ("none", "enet_log", "inverse")


def class_weights(frequencies: np.ndarray, kind: str) -> np.ndarray:
    """Per-class CE weights ``(K,)`` float32 from class frequencies ``(K,)`` (shares summing to 1).

    ``"none"``: all 1. ``"enet_log"``: ``1 / ln(1.02 + f_c)`` (ENet, Paszke et al. 2016; ERFNet,
    PolarNet), between 1.4 (f = 1) and 50.5 (f = 0). ``"inverse"``: ``1 / (f_c + 0.001)``
    (RangeNet++, SalsaNext), up to 1000. Weights are rescaled to mean 1 over the classes present
    (``f_c > 0``) so the loss keeps its scale.
    """
    f = np.asarray(frequencies, dtype=np.float64)
    if f.ndim != 1 or (f < 0).any() or not np.isfinite(f).all():
        raise ValueError(f"class frequencies must be a non-negative (K,) vector, got {f}")
    if kind == "none":
        return np.ones_like(f, dtype=np.float32)
    if kind == "enet_log":
        w = 1.0 / np.log(1.02 + f)
    elif kind == "inverse":
        w = 1.0 / (f + 0.001)
    else:
        raise ValueError(f"class weighting must be one of {CLASS_WEIGHTINGS}, got {kind!r}")
    present = f > 0
    if present.any():
        w = w / w[present].mean()
    return w.astype(np.float32)


def _descending_order(values: torch.Tensor) -> torch.Tensor:
    """Row-wise indices sorting ``values`` ``(C, M)`` in descending order; ``(C, M)`` int64.

    On the CPU through NumPy, whose SIMD sort was 4-5x faster than ``torch.sort`` on this
    project's machine (docs/methods.md); the Lovász value does not depend on how ties break.
    """
    if values.device.type != "cpu":
        return torch.argsort(values, dim=1, descending=True)
    order = np.argsort(-values.numpy(), axis=1)
    return torch.from_numpy(order.astype(np.int64, copy=False))


def lovasz_softmax(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovász-softmax loss (Berman et al., CVPR 2018) over classes present in ``labels``.

    ``logits (M, K)``, ``labels (M,)`` (255 = ignore). A convex surrogate of 1 - IoU per class,
    averaged over the classes that occur in the labelled rows. All present classes are sorted
    in one ``(C, M)`` call (one op per step instead of one per class).
    """
    valid = labels != IGNORE_INDEX
    if not bool(valid.any()):
        return logits.sum() * 0.0
    probs = logits[valid].softmax(dim=1)
    lab = labels[valid]
    present = torch.unique(lab)
    fg = (lab[None, :] == present[:, None]).to(probs.dtype)  # (C, M)
    errors = (fg - probs.t().index_select(0, present)).abs()
    order = _descending_order(errors.detach())
    errors_sorted = errors.gather(1, order)
    fg_sorted = fg.gather(1, order)
    gts = fg_sorted.sum(dim=1, keepdim=True)
    intersection = gts - fg_sorted.cumsum(dim=1)
    union = gts + (1.0 - fg_sorted).cumsum(dim=1)
    jaccard = 1.0 - intersection / union
    grad = torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)
    return (errors_sorted * grad).sum(dim=1).mean()


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
