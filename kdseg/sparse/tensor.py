"""``SparseTensor`` and the kernel-map cache shared along a network.

A sparse tensor is a set of active voxels ``coords`` ``(N, 4)`` = ``[batch, x, y, z]`` (integer
indices at the tensor's own level) with features ``feats`` ``(N, C)`` and a ``stride``
``(sx, sy, sz)``: the voxel size of this level in units of the input voxel size.

Every tensor derived from an input (by convs, norms, activations) shares the input's
:class:`SparseCache`. The cache keeps, per tensor stride, the coordinate set and its sorted keys,
and per ``(stride, kernel, conv-stride, dilation)`` the kernel map, so a U-Net builds each map
once per batch and level, and a transposed conv reuses the map of its strided counterpart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from kdseg.sparse import profile
from kdseg.sparse.kmap import (
    KernelMap,
    KeyIndex,
    check_key_range,
    downsample_coords,
    downsample_kmap,
    strided_kmap,
    submanifold_kmap,
)

Stride = tuple[int, int, int]
KmapKey = tuple[Stride, int, int, int]


def as_stride(stride: int | Sequence[int], what: str = "stride") -> Stride:
    """Normalise an int or 3-sequence of positive ints to a 3-tuple."""
    values = [stride] * 3 if isinstance(stride, int) else list(stride)
    if len(values) != 3 or not all(isinstance(v, int) and v >= 1 for v in values):
        raise ValueError(f"{what} must be a positive int or 3 positive ints, got {stride!r}")
    return (values[0], values[1], values[2])


class SparseCache:
    """Coordinate sets, sorted keys and kernel maps of one batch, shared by derived tensors."""

    def __init__(self) -> None:
        self.coords: dict[Stride, torch.Tensor] = {}
        self.indices: dict[Stride, KeyIndex] = {}
        self.kmaps: dict[KmapKey, KernelMap] = {}
        self.extras: dict[str, Any] = {}
        """per-backend state of the batch (e.g. the spconv backend's level tensors)"""

    def key_index(self, stride: Stride) -> KeyIndex:
        """Sorted keys of the coordinate set at ``stride`` (built once)."""
        index = self.indices.get(stride)
        if index is None:
            coords = self.coords[stride]
            with profile.phase("kmap", coords.device):
                index = KeyIndex.build(coords)
            self.indices[stride] = index
        return index

    def submanifold(self, stride: Stride, kernel_size: int, dilation: int) -> KernelMap:
        """Kernel map of a stride-1 conv on the coordinate set at ``stride``."""
        key = (stride, kernel_size, 1, dilation)
        kmap = self.kmaps.get(key)
        if kmap is None:
            index = self.key_index(stride)
            coords = self.coords[stride]
            with profile.phase("kmap", coords.device):
                kmap = submanifold_kmap(coords, index, kernel_size)
            self.kmaps[key] = kmap
        return kmap

    def downsample(
        self, stride: Stride, kernel_size: int, conv_stride: int, dilation: int
    ) -> tuple[Stride, KernelMap]:
        """Coarse stride and kernel map of a strided conv from the set at ``stride``."""
        coarse: Stride = (
            stride[0] * conv_stride,
            stride[1] * conv_stride,
            stride[2] * conv_stride,
        )
        key = (stride, kernel_size, conv_stride, dilation)
        kmap = self.kmaps.get(key)
        if kmap is None:
            fine = self.coords[stride]
            if kernel_size == conv_stride:  # non-overlapping: parents, no search
                with profile.phase("kmap", fine.device):
                    down, kmap = downsample_kmap(fine, conv_stride)
                    self.coords.setdefault(coarse, down)
            else:
                index = self.key_index(stride)
                with profile.phase("kmap", fine.device):
                    if coarse not in self.coords:
                        self.coords[coarse] = downsample_coords(fine, conv_stride)
                    kmap = strided_kmap(
                        index, fine.shape[0], self.coords[coarse], kernel_size, conv_stride
                    )
            self.kmaps[key] = kmap
        return coarse, kmap

    def upsample(
        self, stride: Stride, kernel_size: int, conv_stride: int, dilation: int
    ) -> tuple[Stride, KernelMap]:
        """Fine stride and the cached map of the strided conv that produced ``stride``."""
        if any(s % conv_stride for s in stride):
            raise ValueError(
                f"transposed conv with stride {conv_stride} on a tensor of stride {stride}: "
                "the stride is not divisible"
            )
        fine: Stride = (
            stride[0] // conv_stride,
            stride[1] // conv_stride,
            stride[2] // conv_stride,
        )
        key = (fine, kernel_size, conv_stride, dilation)
        kmap = self.kmaps.get(key)
        if kmap is None:
            raise ValueError(
                f"transposed conv (kernel {kernel_size}, stride {conv_stride}) from stride "
                f"{stride}: no strided conv with the same kernel ran from stride {fine} on this "
                "batch, so the finer coordinate set is unknown"
            )
        return fine, kmap


class SparseTensor:
    """Sparse voxel tensor: ``feats`` ``(N, C)`` float, ``coords`` ``(N, 4)`` int ``[b, x, y, z]``.

    Coordinates must be unique (the caller's duty: :func:`kdseg.voxelize.voxelize` guarantees
    it), with batch indices ``>= 0`` and x, y, z inside the key budget of
    :mod:`kdseg.sparse.kmap`. ``stride`` is an int or ``(sx, sy, sz)``.
    ``check=False`` skips validation (used for tensors derived inside the network).
    """

    def __init__(
        self,
        feats: torch.Tensor,
        coords: torch.Tensor,
        stride: int | Sequence[int] = 1,
        *,
        cache: SparseCache | None = None,
        check: bool = True,
    ) -> None:
        self.stride: Stride = as_stride(stride)
        if check:
            _validate(feats, coords)
        self.feats = feats
        self.coords = coords
        self.cache = cache if cache is not None else SparseCache()
        registered = self.cache.coords.setdefault(self.stride, coords)
        if registered is not coords and check and not torch.equal(registered, coords):
            raise ValueError(
                f"coords of stride {self.stride} differ from the coordinate set already cached "
                "for that stride; build a new SparseTensor without the cache"
            )

    @property
    def num_channels(self) -> int:
        """Feature width ``C``."""
        return int(self.feats.shape[1])

    @property
    def batch_size(self) -> int:
        """``max(batch index) + 1`` (0 for an empty tensor)."""
        return int(self.coords[:, 0].max()) + 1 if self.coords.shape[0] else 0

    def replace_feats(self, feats: torch.Tensor) -> SparseTensor:
        """Same coordinates, stride and cache with new ``(N, C')`` features."""
        if feats.ndim != 2 or feats.shape[0] != self.coords.shape[0]:
            raise ValueError(
                f"new feats must be ({self.coords.shape[0]}, C), got {tuple(feats.shape)}"
            )
        return SparseTensor(feats, self.coords, self.stride, cache=self.cache, check=False)

    def __repr__(self) -> str:
        return (
            f"SparseTensor(voxels={self.coords.shape[0]}, channels={self.feats.shape[1]}, "
            f"stride={self.stride}, device={self.feats.device})"
        )


def _validate(feats: torch.Tensor, coords: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the problem if ``feats``/``coords`` are malformed."""
    if not isinstance(feats, torch.Tensor) or not isinstance(coords, torch.Tensor):
        raise TypeError("SparseTensor: feats and coords must be torch tensors")
    if coords.ndim != 2 or coords.shape[1] != 4:
        raise ValueError(
            f"SparseTensor: coords must be (N, 4) [b, x, y, z], got {tuple(coords.shape)}"
        )
    if coords.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"SparseTensor: coords must be int32 or int64, got {coords.dtype}")
    if feats.ndim != 2:
        raise ValueError(f"SparseTensor: feats must be (N, C), got {tuple(feats.shape)}")
    if not feats.is_floating_point():
        raise ValueError(f"SparseTensor: feats must be floating point, got {feats.dtype}")
    if feats.shape[0] != coords.shape[0]:
        raise ValueError(
            f"SparseTensor: feats has {feats.shape[0]} rows but coords has {coords.shape[0]}"
        )
    if feats.device != coords.device:
        raise ValueError(f"SparseTensor: feats on {feats.device} but coords on {coords.device}")
    check_key_range(coords, "SparseTensor coords")
