"""PLOP's local POD feature distillation, as its official code computes it
(``arthurdouillard/CVPR2021_PLOP:train.py::features_distillation`` with ``--pod local
--pod_logits`` and ``pod_options = {"switch": {"after": {"extra_channels": "sum", "factor": ...,
"type": "local"}}}``; LGKD's copy is the same).

For each layer pair (old ``a``, new ``b``), the last pair being the stride-os logits:

1. logits layer only: the new model's extra channels are folded into background
   (``extra_channels="sum"``: ``b_0 + sum_{c >= C_o} b_c``, then ``b_1..b_{C_o-1}``), on the raw
   logits; ``"trim"`` keeps ``b[:, :C_o]``;
2. both maps squared element-wise (``prepro="pow"``);
3. local POD embedding (:func:`local_pod_embedding`) at scales (1, 2, 4);
4. per-sample L2 norm (not squared) of the embedding difference, mean over the batch;
5. times the layer's factor (``feature_factor`` for every layer but the last,
   ``logits_factor`` for the last; a factor <= 0 skips the layer) and, with ``schedule``, times
   ``sqrt(C / C_new)`` (``C`` = classes of the current model, background included);

and the sum is divided by the number of layers. The official ``normalize`` argument is
overridden to False inside the function; no normalisation is applied here either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from kdseg.errors import ConfigError

POD_SCALES: tuple[int, ...] = (1, 2, 4)
EXTRA_CHANNELS: tuple[str, ...] = ("sum", "trim")


def local_pod_embedding(x: torch.Tensor, scales: Sequence[int] = POD_SCALES) -> torch.Tensor:
    """Local POD embedding (``_local_pod``): ``(B, C, H, W) -> (B, D)``.

    For each scale ``s`` the window side is ``k = W // s`` (from the width, for both axes, as the
    official code); windows ``(i, j)``, ``i, j < s``, cover rows ``i*k:(i+1)*k`` and columns
    ``j*k:(j+1)*k`` (remainders dropped). Each window contributes its mean over the width
    (``(C, rows)`` values, flattened channel-major) and then its mean over the height
    (``(C, cols)``). ``D = C * sum_s s^2 (rows + cols)``, ``= 2 C W * sum(scales)`` for square
    maps whose side is divisible by every scale.
    """
    if x.dim() != 4:
        raise ConfigError("pod", f"feature maps must be (B, C, H, W), got {tuple(x.shape)}")
    b, c, h, w = x.shape
    parts = []
    for s in scales:
        k = w // s
        if s < 1 or k < 1 or (s - 1) * k >= h:
            raise ConfigError("pod", f"a {h}x{w} map is too small for POD scale {s}")
        if s * k <= h:  # every window is k x k: one reshape instead of s^2 slices
            t = x[..., : s * k, : s * k].reshape(b, c, s, k, s, k)
            width_pooled = t.mean(dim=5).permute(0, 2, 4, 1, 3)  # (B, i, j, C, rows)
            height_pooled = t.mean(dim=3).permute(0, 2, 3, 1, 4)  # (B, i, j, C, cols)
            parts.append(torch.stack([width_pooled, height_pooled], dim=3).reshape(b, -1))
            continue
        for i in range(s):  # the last row of windows is cut by the bottom of the map
            for j in range(s):
                window = x[..., i * k : (i + 1) * k, j * k : (j + 1) * k]
                parts.append(window.mean(dim=3).reshape(b, -1))
                parts.append(window.mean(dim=2).reshape(b, -1))
    return torch.cat(parts, dim=1)


def fold_new_channels(new_logits: torch.Tensor, num_old: int, mode: str = "sum") -> torch.Tensor:
    """New-model logits ``(B, C, h, w)`` brought to the old channel count ``C_o``: ``"sum"``
    adds every new channel to background (PLOP's ``extra_channels: sum``), ``"trim"`` drops them.
    Returns ``(B, C_o, h, w)``."""
    if mode not in EXTRA_CHANNELS:
        raise ConfigError("extra_channels", f"must be one of {EXTRA_CHANNELS}, got {mode!r}")
    if not 1 <= num_old <= new_logits.shape[1]:
        raise ConfigError("num_old", f"need 1 <= num_old <= {new_logits.shape[1]}, got {num_old}")
    if mode == "trim":
        return new_logits[:, :num_old]
    bg = new_logits[:, :1] + new_logits[:, num_old:].sum(dim=1, keepdim=True)
    return torch.cat([bg, new_logits[:, 1:num_old]], dim=1)


def pod_loss(
    new_features: Sequence[torch.Tensor],
    old_features: Sequence[torch.Tensor],
    num_old: int,
    num_new: int,
    feature_factor: float = 0.01,
    logits_factor: float = 0.0005,
    scales: Sequence[int] = POD_SCALES,
    schedule: bool = True,
    extra_channels: str = "sum",
) -> torch.Tensor:
    """PLOP's local POD loss over a layer list whose last element is the logits layer.

    Args:
        new_features: current model's maps, e.g. ``SegmentationOutput.pod_features()`` (4 stages,
            pre-logits, ``(B, C, h, w)`` small logits).
        old_features: the previous model's maps, same shapes except the last ``(B, C_o, h, w)``.
        num_old: ``C_o`` (background included); num_new: the step's new classes.
        feature_factor: factor of every layer but the last (``--pod_factor``: 0.01 PLOP / LGKD
            on VOC, 0.001 LGKD on ADE20K).
        logits_factor: factor of the last layer (``"after"`` factor: 0.0005 / 0.00001).
        scales: local POD scales.
        schedule: multiply by ``sqrt((C_o + C_new) / C_new)`` (``use_pod_schedule``, on).
        extra_channels: ``"sum"`` (official) or ``"trim"``, see :func:`fold_new_channels`.

    Returns:
        scalar loss (already weighted; the official total adds it with weight 1).
    """
    if len(new_features) != len(old_features) or not new_features:
        raise ConfigError("pod", f"{len(new_features)} new and {len(old_features)} old maps")
    if num_new < 1:
        raise ConfigError("num_new", f"POD needs new classes, got {num_new}")
    if new_features[-1].shape[1] != num_old + num_new or old_features[-1].shape[1] != num_old:
        raise ConfigError(
            "pod",
            f"the last maps must be logits with {num_old + num_new} (new) and {num_old} (old) "
            f"channels, got {new_features[-1].shape[1]} and {old_features[-1].shape[1]}",
        )
    adaptive = math.sqrt((num_old + num_new) / num_new) if schedule else 1.0
    last = len(new_features) - 1
    total = new_features[0].new_zeros(())
    for i, (b, a) in enumerate(zip(new_features, old_features, strict=True)):
        factor = logits_factor if i == last else feature_factor
        if b.shape[1] != a.shape[1]:
            if i != last:
                raise ConfigError("pod", f"layer {i} has {b.shape[1]} vs {a.shape[1]} channels")
            b = fold_new_channels(b, a.shape[1], extra_channels)
        if a.shape != b.shape:
            raise ConfigError("pod", f"layer {i}: {tuple(b.shape)} vs {tuple(a.shape)}")
        if factor <= 0:
            continue
        diff = local_pod_embedding(a.pow(2), scales) - local_pod_embedding(b.pow(2), scales)
        total = total + factor * adaptive * diff.norm(dim=-1).mean()
    return total / len(new_features)
