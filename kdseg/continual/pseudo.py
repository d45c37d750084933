"""PLOP's entropy-based pseudo-labels with per-class median thresholds, as implemented
(``arthurdouillard/CVPR2021_PLOP:train.py``: ``entropy``, ``Trainer.find_median`` with
``mode="entropy"``, and the ``pseudo_labeling == "entropy"`` branch of ``Trainer.train``; LGKD's
copy is identical).

Before a step ``t >= 1`` the previous model is run once over the step's training set
(:class:`EntropyStatistics.update` per batch): on every pixel labelled 0 it predicts a class
``argmax p`` and a normalised entropy; a per-class histogram of those values (100 bins over
``[0, 1]``) gives one threshold per class (:meth:`EntropyStatistics.thresholds`, at least
0.001). During training, :func:`entropy_pseudo_labels` replaces each background pixel by the old
model's prediction where its entropy is below the predicted class's threshold and by 255
elsewhere, and returns the per-image factor ``#valid / #background`` that multiplies the CE.

Quirks kept by default (``shared/specs/methods.md`` §4.3b): the entropy is a *mean* over the
old channels divided by ``log C_o``, and is then divided again by ``log C`` (``C`` = classes of
the current model), so its values lie in ``[0, 1 / (C_o log C)]`` (<= 0.0205 on VOC 15-5): they
fill only the first bins. The official median search adds the bin *index* (not its count) to its
running sum and computes the bin index as ``int(k / 100 * 100)`` (29, 57, 58 -> 28, 56, 57), in
float32 like the official tensors; when its loop does not stop, the "median" is extrapolated
from the last bin and can be +inf, -inf (floored to 0.001) or NaN (no pixel of that class is then
accepted). ``median="corrected"`` computes the histogram median instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from kdseg import IGNORE_INDEX
from kdseg.errors import ConfigError

ENTROPY_BINS: int = 100
"""Histogram bins of ``find_median`` in entropy mode."""

THRESHOLD_FLOOR: float = 0.001
"""``--threshold`` of the PLOP and LGKD presets: the lowest per-class threshold."""

MEDIAN_MODES: tuple[str, ...] = ("official", "corrected")


def plop_entropy(probs: torch.Tensor) -> torch.Tensor:
    """PLOP's ``entropy``: ``-(1 / log(K + 1e-8)) * mean_c p_c log(p_c + 1e-8)`` for
    ``probs (B, K, H, W)`` -> ``(B, H, W)``; values in ``[0, 1/K]`` (a mean, not a sum)."""
    k = probs.shape[1]
    return -torch.mean(probs * torch.log(probs + 1e-8), dim=1) * (1.0 / math.log(k + 1e-8))


def _official_median(counts: list[int], num_bins: int) -> np.float32:
    """``find_median``'s loop for one class, in the float32 arithmetic of its tensors."""
    f32 = np.float32
    half = f32(sum(counts)) / f32(2)
    running = 0.0  # a Python float in the official loop
    lower = 0.0
    count = 0
    for k in range(num_bins):
        lower = k / num_bins
        count = counts[int(lower * num_bins)]
        if half >= f32(running) and half <= f32(running) + f32(count):
            break
        running += lower * num_bins  # the bin index, not its count (official)
    with np.errstate(divide="ignore", invalid="ignore"):
        return f32(lower) + ((half - f32(running)) / f32(count)) * f32(1 / num_bins)


def _histogram_median(counts: list[int], num_bins: int) -> float:
    """Median of the values binned in ``counts`` (uniform within a bin), in ``[0, 1]``."""
    half = sum(counts) / 2
    cum = 0
    for k, c in enumerate(counts):
        if cum + c >= half:
            return (k + (half - cum) / c) / num_bins
        cum += c
    raise AssertionError("unreachable: the counts sum to 2 * half")


class EntropyStatistics:
    """Per-class histograms of the old model's normalised entropy on background pixels.

    Args:
        num_classes: ``C``, classes of the *current* model (background included): PLOP sizes
            the histograms and the normaliser ``log C`` with it.
        num_bins: histogram bins over ``[0, 1]`` (100; PLOP's ``--pseudo_nb_bins``).
        device: where the counts live (that of the logits passed to :meth:`update`).
    """

    def __init__(
        self,
        num_classes: int,
        num_bins: int = ENTROPY_BINS,
        device: torch.device | str | None = None,
    ) -> None:
        if num_classes < 2 or num_bins < 1:
            raise ConfigError("num_classes", f"need >= 2 classes and >= 1 bin, got {num_classes}")
        self.num_classes = num_classes
        self.num_bins = num_bins
        self.counts = torch.zeros(num_classes, num_bins, dtype=torch.int64, device=device)
        self.max_entropy = torch.log(torch.tensor(float(num_classes), device=device))
        """``log C`` as a float32 tensor (the official ``max_value``)."""

    @torch.no_grad()
    def update(self, old_logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch: ``old_logits (B, C_o, H, W)`` of the previous model (full
        resolution, as ``outputs_old``), ``labels (B, H, W)`` the step's training labels; pixels
        labelled 0 are counted in the row of the old model's prediction."""
        if old_logits.shape[1] > self.num_classes:
            raise ConfigError("num_classes", f"old logits have {old_logits.shape[1]} channels")
        if labels.shape != (old_logits.shape[0], *old_logits.shape[2:]):
            raise ConfigError("labels", f"{tuple(labels.shape)} vs {tuple(old_logits.shape)}")
        probs = torch.softmax(old_logits, dim=1)
        pseudo = probs.argmax(dim=1)
        bg = labels == 0
        values = plop_entropy(probs)[bg] / self.max_entropy
        bins = torch.clamp((values * self.num_bins).long(), max=self.num_bins - 1)
        self.counts.index_put_((pseudo[bg], bins), torch.ones_like(bins), accumulate=True)

    def thresholds(self, median: str = "official", floor: float = THRESHOLD_FLOOR) -> torch.Tensor:
        """``(C,)`` float32 per-class thresholds: the median of each class's histogram
        (``median`` in :data:`MEDIAN_MODES`), then ``max(threshold, floor)`` (NaN stays NaN, as
        Python's ``max`` keeps it); classes never predicted get ``floor``."""
        if median not in MEDIAN_MODES:
            raise ConfigError("plop_median", f"must be one of {MEDIAN_MODES}, got {median!r}")
        rows = self.counts.cpu().tolist()
        out = np.zeros(self.num_classes, dtype=np.float32)
        for c, counts in enumerate(rows):
            if sum(counts) <= 0:
                continue
            if median == "official":
                out[c] = _official_median(counts, self.num_bins)
            else:
                out[c] = _histogram_median(counts, self.num_bins)
        low = np.float32(floor)
        out = np.where(out < low, low, out)  # NaN < low is False: NaN is kept
        return torch.from_numpy(out).to(self.counts.device)


@dataclass
class PseudoLabels:
    """Result of :func:`entropy_pseudo_labels` for a ``(B, H, W)`` batch.

    Attributes:
        labels: ``(B, H, W)`` int64: new-class labels kept, background pixels replaced by the
            old model's prediction (valid) or 255 (invalid).
        valid: ``(B, H, W)`` bool, background pixels whose pseudo-label was accepted.
        background: ``(B, H, W)`` bool, pixels labelled below ``C_o``.
        adaptive_factor: ``(B,)`` float, ``#valid / (#background + 1e-6)`` per image
            (``classif_adaptive_factor``; multiplies that image's CE).
    """

    labels: torch.Tensor
    valid: torch.Tensor
    background: torch.Tensor
    adaptive_factor: torch.Tensor


@torch.no_grad()
def entropy_pseudo_labels(
    labels: torch.Tensor,
    old_logits: torch.Tensor,
    thresholds: torch.Tensor,
    max_entropy: torch.Tensor | float,
) -> PseudoLabels:
    """PLOP's entropy pseudo-labelling of one batch.

    Args:
        labels: ``(B, H, W)`` int64 training labels (old and future classes already 0).
        old_logits: ``(B, C_o, H, W)`` previous model, full resolution.
        thresholds: ``(C,)`` from :meth:`EntropyStatistics.thresholds`.
        max_entropy: ``log C`` (:attr:`EntropyStatistics.max_entropy`).
    """
    if labels.shape != (old_logits.shape[0], *old_logits.shape[2:]):
        raise ConfigError("labels", f"{tuple(labels.shape)} vs {tuple(old_logits.shape)}")
    if thresholds.shape[0] < old_logits.shape[1]:
        raise ConfigError("thresholds", f"{thresholds.shape[0]} < {old_logits.shape[1]} classes")
    probs = torch.softmax(old_logits, dim=1)
    pseudo = probs.argmax(dim=1)
    background = labels < old_logits.shape[1]
    valid = (plop_entropy(probs) / max_entropy) < thresholds[pseudo]
    out = torch.where(background & ~valid, torch.full_like(labels, IGNORE_INDEX), labels)
    out = torch.where(background & valid, pseudo, out)
    num = (valid & background).float().sum(dim=(1, 2))
    den = background.float().sum(dim=(1, 2))
    return PseudoLabels(out, valid & background, background, num / (den + 1e-6))
