"""Pointwise layers on sparse tensors (applied to ``feats`` ``(N, C)``) and skip helpers."""

from __future__ import annotations

import torch
from torch import nn

from kdseg.sparse.tensor import SparseTensor


class BatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` over the voxels of a sparse tensor (statistics over all ``N`` voxels)."""

    def forward(self, x: SparseTensor) -> SparseTensor:  # type: ignore[override]
        return x.replace_feats(super().forward(x.feats))


class ReLU(nn.ReLU):
    """ReLU on ``feats``."""

    def forward(self, x: SparseTensor) -> SparseTensor:  # type: ignore[override]
        return x.replace_feats(super().forward(x.feats))


class LeakyReLU(nn.LeakyReLU):
    """LeakyReLU on ``feats``."""

    def forward(self, x: SparseTensor) -> SparseTensor:  # type: ignore[override]
        return x.replace_feats(super().forward(x.feats))


def _check_same_sites(a: SparseTensor, b: SparseTensor, op: str) -> None:
    if a.coords is b.coords:
        return
    if a.coords.shape != b.coords.shape or not torch.equal(a.coords, b.coords):
        raise ValueError(
            f"{op}: tensors have different coordinate sets ({a.coords.shape[0]} voxels at stride "
            f"{a.stride} vs {b.coords.shape[0]} at stride {b.stride})"
        )


def cat(tensors: list[SparseTensor] | tuple[SparseTensor, ...]) -> SparseTensor:
    """Concatenate features ``(N, C1) + (N, C2) -> (N, C1 + C2)`` of tensors with equal coords."""
    if not tensors:
        raise ValueError("cat: no tensors given")
    for other in tensors[1:]:
        _check_same_sites(tensors[0], other, "cat")
    return tensors[0].replace_feats(torch.cat([t.feats for t in tensors], dim=1))


def add(a: SparseTensor, b: SparseTensor) -> SparseTensor:
    """Elementwise sum of the features of two tensors with equal coords and widths."""
    _check_same_sites(a, b, "add")
    return a.replace_feats(a.feats + b.feats)
