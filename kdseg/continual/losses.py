"""Losses of the continual-segmentation baselines and of LGKD, as the official code computes them.

Shapes: ``B`` images, ``C`` channels of the current model (background 0, old classes, then the
step's new classes), ``C_o`` channels of the previous model (background included), ``H x W``
pixels. Labels are int64 ``(B, H, W)`` train ids in the current model's channel order with 255 =
ignore; by the protocol (``kdseg.datasets.continual``, ``data_masking="current"``) old and
future classes are already 0 in them.

Reductions follow the official trainers (``shared/specs/methods.md`` §4.3b):

* classification losses are computed per pixel and averaged over **all** ``B*H*W`` pixels,
  ignored pixels contributing 0 (``reduction="all_pixels"``, the default). ``"valid_pixels"``
  averages over non-ignored pixels only (PyTorch's ``ignore_index`` mean), ``"none"`` returns the
  per-pixel map;
* the KD losses of MiB / LwF average over the old channels and then over all pixels (nothing is
  ignored);
* LGKD averages over the non-ignored pixels with its two weights inside the mean.

Each function names the official function it reproduces. Weights (``loss_kd`` 10 for MiB, ...)
are applied by the caller; :mod:`kdseg.continual.presets` lists them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdseg import IGNORE_INDEX
from kdseg.errors import ConfigError

REDUCTIONS: tuple[str, ...] = ("all_pixels", "valid_pixels", "none")
KD_REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


def _check_pair(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.dim() != 4 or labels.shape != (logits.shape[0], *logits.shape[2:]):
        raise ConfigError(
            "labels",
            f"logits (B, C, H, W) and labels (B, H, W) expected, got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}",
        )


def _reduce_pixels(per_pixel: torch.Tensor, valid: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce a ``(B, H, W)`` map that is 0 on ignored pixels (``valid`` False)."""
    if reduction == "all_pixels":
        return per_pixel.mean()
    if reduction == "valid_pixels":
        n = valid.sum()
        return per_pixel.sum() / n.clamp(min=1)
    if reduction == "none":
        return per_pixel
    raise ConfigError("reduction", f"must be one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    pixel_weight: torch.Tensor | None = None,
    reduction: str = "all_pixels",
) -> torch.Tensor:
    """Per-pixel CE with ignore 255 (fine-tuning, LwF, ILT, joint training; PLOP's CE on its
    pseudo-labels): ``nn.CrossEntropyLoss(ignore_index=255, reduction='none')`` then ``.mean()``.

    Args:
        logits: ``(B, C, H, W)``.
        labels: ``(B, H, W)`` int64, 255 = ignore.
        pixel_weight: optional multiplier broadcast to ``(B, H, W)``: ``(B,)`` per image (PLOP's
            ``classif_adaptive_factor``) or ``(B, H, W)``.
        reduction: one of :data:`REDUCTIONS`.

    Returns:
        scalar (or ``(B, H, W)`` for ``"none"``), in nats.
    """
    _check_pair(logits, labels)
    per = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="none")
    if pixel_weight is not None:
        per = per * (pixel_weight.view(-1, 1, 1) if pixel_weight.dim() == 1 else pixel_weight)
    return _reduce_pixels(per, labels != IGNORE_INDEX, reduction)


def unbiased_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, num_old: int, reduction: str = "all_pixels"
) -> torch.Tensor:
    """MiB's unbiased CE (``utils/loss.py::UnbiasedCrossEntropy``, after commit 1c58983).

    A pixel labelled background (or any id below ``num_old``) scores the summed probability of
    background and every old class, ``log sum_{c < C_o} softmax(z)_c``; a pixel labelled new class
    ``y`` scores ``log softmax(z)_y``. Loss = minus that, 0 on ignored pixels.

    Args:
        logits: ``(B, C, H, W)`` current model.
        labels: ``(B, H, W)`` int64, 255 = ignore.
        num_old: ``C_o`` (background included), ``1 <= C_o < C``.
        reduction: one of :data:`REDUCTIONS`.
    """
    _check_pair(logits, labels)
    if not 1 <= num_old < logits.shape[1]:
        raise ConfigError("num_old", f"need 1 <= num_old < {logits.shape[1]}, got {num_old}")
    valid = labels != IGNORE_INDEX
    target = torch.where(valid, labels, torch.zeros_like(labels))
    log_norm = torch.logsumexp(logits, dim=1)
    log_old = torch.logsumexp(logits[:, :num_old], dim=1) - log_norm
    log_label = logits.gather(1, target.unsqueeze(1)).squeeze(1) - log_norm
    per = -torch.where(target < num_old, log_old, log_label)
    per = torch.where(valid, per, torch.zeros_like(per))
    return _reduce_pixels(per, valid, reduction)


def _reduce_kd(per_pixel: torch.Tensor, mask: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if mask is not None:
        per_pixel = per_pixel * mask.to(per_pixel.dtype)
    if reduction == "mean":
        return per_pixel.mean()
    if reduction == "sum":
        return per_pixel.sum()
    if reduction == "none":
        return per_pixel
    raise ConfigError("reduction", f"must be one of {KD_REDUCTIONS}, got {reduction!r}")


def _check_kd(new_logits: torch.Tensor, old_logits: torch.Tensor, need_new: bool) -> int:
    c_old = old_logits.shape[1]
    if (
        new_logits.dim() != 4
        or old_logits.shape[0] != new_logits.shape[0]
        or old_logits.shape[2:] != new_logits.shape[2:]
        or c_old > new_logits.shape[1]
        or (need_new and c_old == new_logits.shape[1])
    ):
        raise ConfigError(
            "old_logits",
            f"new (B, C, H, W) and old (B, C_o, H, W) logits with C_o {'<' if need_new else '<='}"
            f" C expected, got {tuple(new_logits.shape)} and {tuple(old_logits.shape)}",
        )
    return c_old


def kd_loss(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    alpha: float = 1.0,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Knowledge distillation of LwF and ILT (MiB's ``KnowledgeDistillationLoss``).

    The new logits are cut to the old channels and re-normalised over them:
    ``l = -(1/C_o) sum_{c < C_o} softmax(alpha z_old / T)_c log softmax(z_new[:C_o] / T)_c`` per
    pixel, then the mean over all ``B*H*W`` pixels (no pixel ignored).

    Args:
        new_logits: ``(B, C, H, W)``; old_logits: ``(B, C_o, H, W)`` (``C_o <= C``).
        alpha: MiB's ``--alpha``, multiplies the old logits only (1 in every official script).
        temperature: divides old and new logits (PLOP's ``temperature_apply="all"``; 1 = off,
            the official LwF/ILT setting). No ``T**2`` factor, as in the official code.
        mask: optional ``(B, H, W)`` pixel multiplier applied before the mean.
        reduction: ``"mean"`` (official), ``"sum"`` or ``"none"`` (``(B, H, W)``).
    """
    c_old = _check_kd(new_logits, old_logits, need_new=False)
    if temperature <= 0:
        raise ConfigError("temperature", f"must be > 0, got {temperature}")
    log_q = torch.log_softmax(new_logits[:, :c_old] / temperature, dim=1)
    p = torch.softmax(old_logits * alpha / temperature, dim=1)
    return _reduce_kd(-(p * log_q).mean(dim=1), mask, reduction)


def unbiased_kd_loss(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    alpha: float = 1.0,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """MiB's unbiased knowledge distillation (``UnbiasedKnowledgeDistillationLoss``).

    The new model's background probability is the sum over background and the new classes:
    ``log q_0 = logsumexp(z_new[{0} ∪ new]) - logsumexp(z_new)``, ``log q_c = z_new_c -
    logsumexp(z_new)`` for old foreground ``c``. Per pixel
    ``l = -(1/C_o) (p_0 log q_0 + sum_{c=1}^{C_o-1} p_c log q_c)`` with
    ``p = softmax(alpha z_old)``, then the mean over all pixels.

    Args:
        new_logits: ``(B, C, H, W)``; old_logits: ``(B, C_o, H, W)``, ``C_o < C``.
        alpha, mask, reduction: as :func:`kd_loss`.
    """
    c_old = _check_kd(new_logits, old_logits, need_new=True)
    log_norm = torch.logsumexp(new_logits, dim=1)
    bg_and_new = torch.cat([new_logits[:, :1], new_logits[:, c_old:]], dim=1)
    log_bg = torch.logsumexp(bg_and_new, dim=1) - log_norm
    log_fg = new_logits[:, 1:c_old] - log_norm.unsqueeze(1)
    p = torch.softmax(old_logits * alpha, dim=1)
    per = -(p[:, 0] * log_bg + (p[:, 1:] * log_fg).sum(dim=1)) / c_old
    return _reduce_kd(per, mask, reduction)


def feature_distillation_loss(new_feature: torch.Tensor, old_feature: torch.Tensor) -> torch.Tensor:
    """ILT's feature distillation (MiB's ``lde_loss = nn.MSELoss()`` on ``features['body']``):
    mean of ``(f_new - f_old)^2`` over every element of the ``(B, D, h, w)`` encoder outputs."""
    if new_feature.shape != old_feature.shape:
        raise ConfigError(
            "old_feature",
            f"shapes differ: {tuple(new_feature.shape)} vs {tuple(old_feature.shape)}",
        )
    return F.mse_loss(new_feature, old_feature)


def downsample_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour downsampling of ``(B, H, W)`` labels to ``size = (h, w)``, as LGKD's
    ``F.interpolate(labels.float(), scale_factor=1/16)`` (PyTorch ``"nearest"``: source index
    ``floor(i * H / h)``, the top-left pixel of each block when ``H`` is a multiple of ``h``).
    Returns ``(B, h, w)`` int64."""
    if labels.dim() != 3:
        raise ConfigError("labels", f"(B, H, W) expected, got {tuple(labels.shape)}")
    small = F.interpolate(labels.unsqueeze(1).float(), size=tuple(size), mode="nearest")
    return small.squeeze(1).long()


def lgkd_loss(
    new_logits: torch.Tensor,
    old_logits: torch.Tensor,
    labels: torch.Tensor,
    prev_weight: float,
    novel_weight: float,
    alpha: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """LGKD's label-guided KD (``LabelGuidedKnowledgeDistillationLoss`` of ``Ze-Yang/LGKD``'s
    ``utils/loss.py``).

    On every non-ignored pixel, with ``p = softmax(alpha z_old)`` (``C_o`` values) the target
    ``q`` over all ``C`` new channels is ``[p, 0, ..., 0]``; on a pixel whose label ``y`` is a new
    class (``y >= C_o``) the background mass moves to that class: ``q_y = p_0``, then ``q_0 = 0``.
    Per pixel ``l = -sum_c q_c log softmax(z_new)_c``, weighted ``prev_weight`` on pixels labelled
    below ``C_o`` and ``novel_weight`` on new-class pixels; the result is the mean over all
    non-ignored pixels (pixels of weight 0 still count in the denominator: VOC 15-1's
    ``novel_kd 0``). The official trainer calls it on the stride-16 logits
    (``sem_logits_small``) with the ground truth before pseudo-labelling, downsampled by
    :func:`downsample_labels`, and multiplies it by ``loss_kd`` (1).

    Args:
        new_logits: ``(B, C, h, w)``; old_logits: ``(B, C_o, h, w)``, ``C_o < C``.
        labels: ``(B, h, w)`` int64 at the logits' resolution, 255 = ignore.
        prev_weight, novel_weight: ``--prev_kd`` / ``--novel_kd``
            (:func:`kdseg.continual.presets.lgkd_weights`).
        alpha: multiplies the old logits (1 officially).
        reduction: ``"mean"`` (official), ``"sum"``, or ``"none"``: the weighted per-pixel map
            ``(B, h, w)`` with 0 on ignored pixels.

    Deviation: with no valid pixel the official mean is NaN; this returns 0 (with a graph).
    """
    c_old = _check_kd(new_logits, old_logits, need_new=True)
    _check_pair(new_logits, labels)
    valid = labels != IGNORE_INDEX
    target = torch.where(valid, labels, torch.zeros_like(labels))
    novel = valid & (target >= c_old)
    p = torch.softmax(old_logits * alpha, dim=1)  # (B, C_o, h, w)
    q = torch.zeros_like(new_logits)
    q[:, :c_old] = p
    # label-guided target on novel pixels: background mass onto the labelled class, then q_0 = 0
    moved = torch.cat([torch.zeros_like(p[:, :1]), q[:, 1:]], dim=1)
    moved = moved.scatter(1, target.unsqueeze(1), p[:, :1])
    q = torch.where(novel.unsqueeze(1), moved, q)
    per = -(q * torch.log_softmax(new_logits, dim=1)).sum(dim=1)
    weight = torch.where(novel, float(novel_weight), float(prev_weight))
    per = torch.where(valid, per * weight, torch.zeros_like(per))
    if reduction == "mean":
        return per.sum() / valid.sum().clamp(min=1)
    if reduction in ("sum", "none"):
        return per.sum() if reduction == "sum" else per
    raise ConfigError("reduction", f"must be one of {KD_REDUCTIONS}, got {reduction!r}")
