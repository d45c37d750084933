"""Voxelization of point clouds into sparse tensors, and the way back.

Conventions:

* Voxel coordinates are ``floor(xyz / voxel_size)`` **shifted per sample** so that the smallest
  coordinate of each sample is 0 on every axis (so two clouds of a batch share no offset and the
  key budget of :mod:`kdseg.sparse.kmap` is measured from 0). The shift is returned
  (``Voxelized.origin``): ``voxel (i, j, k)`` covers ``[(origin + (i, j, k)) * voxel_size,
  (origin + (i, j, k) + 1) * voxel_size)`` in metres.
* Voxels are ordered by their ``(x, y, z)`` key (deterministic, independent of point order).
* Voxel features are the mean of the point features (all ``D`` columns, e.g. x, y, z,
  remission). Voxel labels are the majority of the non-ignored point labels (ties: smallest
  class id); a voxel whose points are all ignored gets ``ignore_index``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from kdseg import IGNORE_INDEX
from kdseg.sparse.kmap import AXIS_MAX, encode_keys
from kdseg.sparse.tensor import SparseTensor


@dataclass(frozen=True)
class Voxelized:
    """One voxelized cloud.

    Attributes:
        coords: ``(V, 4)`` int32 ``[batch, x, y, z]`` voxel indices (non-negative x, y, z).
        feats: ``(V, D)`` float, mean point features per voxel.
        p2v: ``(N,)`` int64, voxel row of each point.
        labels: ``(V,)`` int64 majority labels, or ``None`` when no labels were given.
        origin: ``(3,)`` int64, the per-sample shift: unshifted voxel index = ``coords + origin``.
    """

    coords: torch.Tensor
    feats: torch.Tensor
    p2v: torch.Tensor
    labels: torch.Tensor | None
    origin: torch.Tensor


@dataclass(frozen=True)
class VoxelizedBatch:
    """Several clouds voxelized into one sparse tensor.

    Attributes:
        tensor: ``SparseTensor`` with ``V = sum V_b`` voxels, batch column = sample index.
        p2v: ``(sum N_b,)`` int64, row in ``tensor`` of each point of the concatenated clouds
            (already offset: ``devoxelize(voxel_feats, p2v)`` gives all points in input order).
        labels: ``(V,)`` int64 voxel labels or ``None``.
        point_offsets: ``(B + 1,)`` int64, points of sample ``b`` are ``[off[b], off[b + 1])``.
        voxel_offsets: ``(B + 1,)`` int64, voxels of sample ``b`` are ``[off[b], off[b + 1])``.
        voxel_size: the voxel edge(s) in metres the batch was made with.
    """

    tensor: SparseTensor
    p2v: torch.Tensor
    labels: torch.Tensor | None
    point_offsets: torch.Tensor
    voxel_offsets: torch.Tensor
    voxel_size: float | tuple[float, ...] = 0.0


def _voxel_size(voxel_size: float | Sequence[float], device: torch.device) -> torch.Tensor:
    sizes = [float(voxel_size)] * 3 if isinstance(voxel_size, int | float) else list(voxel_size)
    if len(sizes) != 3 or not all(s > 0 for s in sizes):
        raise ValueError(f"voxel_size must be a positive float or 3 of them, got {voxel_size!r}")
    return torch.tensor(sizes, dtype=torch.float64, device=device)


def majority_labels(
    labels: torch.Tensor, p2v: torch.Tensor, num_voxels: int, num_classes: int, ignore_index: int
) -> torch.Tensor:
    """``(V,)`` majority vote of point ``labels`` ``(N,)`` over voxels ``p2v`` ``(N,)``.

    Ignored points do not vote; ties go to the smallest class id; voxels without a vote get
    ``ignore_index``.
    """
    valid = labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= num_classes))
    if bad.any():
        value = int(labels[bad][0])
        raise ValueError(
            f"labels: {int(bad.sum())} point labels outside 0..{num_classes - 1} and not the "
            f"ignore index {ignore_index} (first: {value})"
        )
    votes = torch.zeros(num_voxels * num_classes, dtype=torch.int64, device=labels.device)
    flat = p2v[valid] * num_classes + labels[valid]
    votes.index_add_(0, flat, torch.ones_like(flat))
    votes = votes.view(num_voxels, num_classes)
    best = votes.argmax(dim=1)
    return torch.where(votes.amax(dim=1) > 0, best, torch.full_like(best, ignore_index))


def voxelize(
    points: torch.Tensor,
    voxel_size: float | Sequence[float],
    batch_index: int = 0,
    labels: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    num_classes: int | None = None,
) -> Voxelized:
    """Voxelize ``points`` ``(N, D)`` (``D >= 3``; columns 0..2 are x, y, z in metres).

    Args:
        voxel_size: voxel edge in metres (one float or ``(sx, sy, sz)``).
        batch_index: value of the batch column of ``coords``.
        labels: ``(N,)`` int64 train ids (``ignore_index`` = unlabelled) or ``None``.
        num_classes: number of classes for the vote; inferred from ``labels`` when ``None``.
    """
    if points.ndim != 2 or points.shape[1] < 3 or not points.is_floating_point():
        raise ValueError(f"points must be a float (N, D>=3) tensor, got {tuple(points.shape)}")
    if not torch.isfinite(points[:, :3]).all():
        raise ValueError("points: x, y, z contain NaN or inf")
    if batch_index < 0:
        raise ValueError(f"batch_index must be >= 0, got {batch_index}")
    n = points.shape[0]
    if labels is not None and (labels.shape != (n,) or labels.dtype != torch.int64):
        raise ValueError(
            f"labels must be an int64 ({n},) tensor, got {labels.dtype} {tuple(labels.shape)}"
        )
    size = _voxel_size(voxel_size, points.device)
    grid = torch.floor(points[:, :3].to(torch.float64) / size).to(torch.int64)
    origin = grid.min(dim=0).values if n else grid.new_zeros(3)
    grid = grid - origin
    if n and int(grid.max()) > AXIS_MAX:
        raise ValueError(
            f"points span {int(grid.max()) + 1} voxels on one axis at voxel size "
            f"{size.tolist()} m; the sparse key budget allows {AXIS_MAX + 1}: crop the cloud "
            "or use larger voxels"
        )
    coords4 = torch.cat([grid.new_full((n, 1), batch_index), grid], dim=1)
    keys, p2v = torch.unique(encode_keys(coords4), return_inverse=True)
    num_voxels = keys.numel()
    first = torch.full((num_voxels,), n, dtype=torch.int64, device=points.device)
    first.scatter_reduce_(0, p2v, torch.arange(n, device=points.device), reduce="amin")
    counts = torch.bincount(p2v, minlength=num_voxels).to(points.dtype)
    feats = points.new_zeros((num_voxels, points.shape[1])).index_add_(0, p2v, points)
    feats = feats / counts[:, None]
    voxel_labels = None
    if labels is not None:
        if num_classes is None:
            valid = labels[labels != ignore_index]
            num_classes = int(valid.max()) + 1 if valid.numel() else 1
        voxel_labels = majority_labels(labels, p2v, num_voxels, num_classes, ignore_index)
    return Voxelized(
        coords=coords4[first].to(torch.int32),
        feats=feats,
        p2v=p2v,
        labels=voxel_labels,
        origin=origin,
    )


def voxelize_batch(
    clouds: Sequence[torch.Tensor],
    voxel_size: float | Sequence[float],
    labels: Sequence[torch.Tensor] | None = None,
    ignore_index: int = IGNORE_INDEX,
    num_classes: int | None = None,
) -> VoxelizedBatch:
    """Voxelize clouds ``[(N_b, D)]`` into one :class:`SparseTensor` (batch column = index)."""
    if not clouds:
        raise ValueError("voxelize_batch: no clouds given")
    if labels is not None and len(labels) != len(clouds):
        raise ValueError(f"voxelize_batch: {len(clouds)} clouds but {len(labels)} label arrays")
    parts = [
        voxelize(
            cloud,
            voxel_size,
            batch_index=b,
            labels=None if labels is None else labels[b],
            ignore_index=ignore_index,
            num_classes=num_classes,
        )
        for b, cloud in enumerate(clouds)
    ]
    device = clouds[0].device
    voxel_counts = torch.tensor([0] + [p.coords.shape[0] for p in parts], device=device)
    point_counts = torch.tensor([0] + [c.shape[0] for c in clouds], device=device)
    voxel_offsets = torch.cumsum(voxel_counts, 0)
    p2v = torch.cat([p.p2v + voxel_offsets[b] for b, p in enumerate(parts)])
    tensor = SparseTensor(
        torch.cat([p.feats for p in parts]), torch.cat([p.coords for p in parts]), stride=1
    )
    voxel_labels = None
    if labels is not None:
        voxel_labels = torch.cat([p.labels for p in parts if p.labels is not None])
    return VoxelizedBatch(
        tensor=tensor,
        p2v=p2v,
        labels=voxel_labels,
        point_offsets=torch.cumsum(point_counts, 0),
        voxel_offsets=voxel_offsets,
        voxel_size=float(voxel_size) if isinstance(voxel_size, int | float) else tuple(voxel_size),
    )


def devoxelize(voxel_feats: torch.Tensor, p2v: torch.Tensor) -> torch.Tensor:
    """Per-point features ``(N, C)`` = ``voxel_feats`` ``(V, C)`` of each point's voxel."""
    if p2v.ndim != 1 or p2v.dtype != torch.int64:
        raise ValueError(f"p2v must be an int64 (N,) tensor, got {p2v.dtype} {tuple(p2v.shape)}")
    if p2v.numel() and (int(p2v.min()) < 0 or int(p2v.max()) >= voxel_feats.shape[0]):
        raise ValueError(
            f"p2v indexes voxels {int(p2v.min())}..{int(p2v.max())} but there are "
            f"{voxel_feats.shape[0]} voxel features"
        )
    return voxel_feats.index_select(0, p2v)
