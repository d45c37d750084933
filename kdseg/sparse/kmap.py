"""Kernel maps from sorted voxel keys.

A *kernel map* lists, for every kernel offset ``k``, the pairs ``(i, o)`` such that input voxel
``i`` contributes to output voxel ``o`` through weight ``W[k]``. It is built in three steps:

1. encode each ``(b, x, y, z)`` into one int64 key (:func:`encode_keys`) and sort the keys once
   per coordinate set (:class:`KeyIndex`);
2. for every output voxel and kernel offset compute the coordinate of the input neighbour and
   encode it;
3. find the neighbour with :func:`torch.searchsorted` and keep the hits.

Key bit budget (63 usable bits of an int64, sign bit kept 0): batch index 15 bits
(``0 <= b < 32768``) then 16 bits for each of x, y and z, stored with a bias of ``2**15`` so that
``-32768 <= x, y, z < 32768``. At 0.05 m voxels that is a ±1.6 km cube per scan.

Geometry convention (shared with dense ``conv3d``; see docs/sparse.md): coordinates are integer
indices *at the tensor's own level* (a stride-2 tensor has coordinates ``floor(c / 2)``). For
kernel size ``K`` let ``p = (K - 1) // 2`` (1 for K=3, 0 for K=1 and K=2). Kernel offset index
``k = (kx * K + ky) * K + kz`` with ``kx, ky, kz`` in ``0..K-1`` links output ``o`` to input
``s * o + (kx, ky, kz) - p`` (``s`` the conv stride, 1 or 2). This is dense ``conv3d`` with
``stride=s, padding=p`` evaluated at the output sites.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BATCH_BITS = 15
"""Bits of the batch index in a key."""
AXIS_BITS = 16
"""Bits of each spatial axis in a key."""
AXIS_BIAS = 1 << (AXIS_BITS - 1)
"""Added to x, y, z before packing, so negative coordinates are allowed."""
AXIS_MIN = -AXIS_BIAS
"""Smallest allowed spatial coordinate (inclusive)."""
AXIS_MAX = AXIS_BIAS - 1
"""Largest allowed spatial coordinate (inclusive)."""
BATCH_MAX = (1 << BATCH_BITS) - 1
"""Largest allowed batch index (inclusive)."""


def check_key_range(coords: torch.Tensor, what: str = "coords") -> None:
    """Raise ``ValueError`` if ``coords`` ``(N, 4)`` do not fit the key bit budget.

    Batch indices must lie in ``[0, BATCH_MAX]`` and x, y, z in ``[AXIS_MIN, AXIS_MAX]``.
    """
    if coords.numel() == 0:
        return
    lo = coords.min(dim=0).values.tolist()
    hi = coords.max(dim=0).values.tolist()
    if lo[0] < 0:
        raise ValueError(f"{what}: negative batch index {lo[0]} (batch indices start at 0)")
    if hi[0] > BATCH_MAX:
        raise ValueError(
            f"{what}: batch index {hi[0]} overflows the {BATCH_BITS}-bit key budget "
            f"(max {BATCH_MAX})"
        )
    for axis, name in enumerate("xyz", start=1):
        if lo[axis] < AXIS_MIN or hi[axis] > AXIS_MAX:
            raise ValueError(
                f"{what}: {name} range [{lo[axis]}, {hi[axis]}] overflows the {AXIS_BITS}-bit "
                f"key budget [{AXIS_MIN}, {AXIS_MAX}]; use a larger voxel size or crop the scan"
            )


def encode_keys(coords: torch.Tensor) -> torch.Tensor:
    """Pack ``(N, 4)`` integer ``[b, x, y, z]`` into ``(N,)`` int64 keys (no range check).

    Keys sort by batch, then x, then y, then z. Callers guarantee the range
    (:func:`check_key_range`) or mask out-of-range rows themselves.
    """
    c = coords.to(torch.int64)
    key = c[:, 0] << (3 * AXIS_BITS)
    key = key | ((c[:, 1] + AXIS_BIAS) << (2 * AXIS_BITS))
    key = key | ((c[:, 2] + AXIS_BIAS) << AXIS_BITS)
    return key | (c[:, 3] + AXIS_BIAS)


def kernel_offsets(kernel_size: int, device: torch.device | None = None) -> torch.Tensor:
    """``(K^3, 3)`` int64 offsets ``(kx, ky, kz) - p`` in the order of the weight's first axis."""
    r = torch.arange(kernel_size, device=device, dtype=torch.int64) - (kernel_size - 1) // 2
    grid = torch.meshgrid(r, r, r, indexing="ij")
    return torch.stack([g.reshape(-1) for g in grid], dim=1)


@dataclass(frozen=True)
class KeyIndex:
    """Sorted keys of one coordinate set: ``keys`` ``(N,)`` ascending, ``perm`` ``(N,)``.

    ``keys[j]`` is the key of row ``perm[j]`` of the original coordinates.
    """

    keys: torch.Tensor
    perm: torch.Tensor

    @staticmethod
    def build(coords: torch.Tensor) -> KeyIndex:
        """Index ``(N, 4)`` coordinates that are unique and within the key budget."""
        keys, perm = torch.sort(encode_keys(coords))
        return KeyIndex(keys=keys, perm=perm)

    def lookup(self, coords: torch.Tensor) -> torch.Tensor:
        """Row of each query ``(M, 4)`` in the indexed set, ``-1`` where absent; ``(M,)`` int64.

        Queries may lie outside the key budget; such rows are reported absent.
        """
        inside = ((coords[:, 1:] >= AXIS_MIN) & (coords[:, 1:] <= AXIS_MAX)).all(dim=1)
        query = encode_keys(torch.where(inside[:, None], coords, torch.zeros_like(coords)))
        n = self.keys.numel()
        if n == 0:
            return torch.full_like(query, -1)
        pos = torch.searchsorted(self.keys, query).clamp_(max=n - 1)
        found = inside & (self.keys[pos] == query)
        return torch.where(found, self.perm[pos], torch.full_like(pos, -1))


@dataclass(frozen=True)
class KernelMap:
    """Input/output pairs of a convolution, grouped by kernel offset.

    ``in_idx`` and ``out_idx`` ``(P,)`` int64 hold all pairs, offset after offset; offset ``k``
    owns the slice ``bounds[k]:bounds[k + 1]`` (``bounds`` has ``K^3 + 1`` Python ints).
    ``identity`` is the offset whose pairs are ``(i, i)`` for every voxel (the centre of an odd
    submanifold kernel), or ``None``; convs skip its gather and scatter.
    ``num_in``/``num_out`` are the input and output voxel counts (of the *forward*, strided conv).
    """

    in_idx: torch.Tensor
    out_idx: torch.Tensor
    bounds: tuple[int, ...]
    num_in: int
    num_out: int
    identity: int | None = None

    @property
    def num_pairs(self) -> int:
        """Total number of (input, output) pairs, the identity offset included."""
        return self.bounds[-1]

    def pairs(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(in_idx, out_idx)`` of offset ``k``."""
        lo, hi = self.bounds[k], self.bounds[k + 1]
        return self.in_idx[lo:hi], self.out_idx[lo:hi]


def _gather_pairs(
    index: KeyIndex, out_coords: torch.Tensor, offsets: torch.Tensor, stride: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per offset, the input rows (from ``index``) and output rows (of ``out_coords``) linked."""
    n_out = out_coords.shape[0]
    base = out_coords.to(torch.int64).clone()
    base[:, 1:] *= stride
    k3 = offsets.shape[0]
    shift = torch.zeros((k3, 4), dtype=torch.int64, device=offsets.device)
    shift[:, 1:] = offsets
    query = (base[None, :, :] + shift[:, None, :]).reshape(-1, 4)
    found = index.lookup(query).view(k3, n_out)
    out_rows = torch.arange(n_out, device=out_coords.device)
    ins, outs = [], []
    for k in range(k3):
        hit = found[k] >= 0
        ins.append(found[k][hit])
        outs.append(out_rows[hit])
    return ins, outs


def _pack(
    ins: list[torch.Tensor], outs: list[torch.Tensor], n_in: int, n_out: int, identity: int | None
) -> KernelMap:
    bounds = [0]
    for i in ins:
        bounds.append(bounds[-1] + int(i.numel()))
    return KernelMap(
        in_idx=torch.cat(ins),
        out_idx=torch.cat(outs),
        bounds=tuple(bounds),
        num_in=n_in,
        num_out=n_out,
        identity=identity,
    )


def submanifold_kmap(coords: torch.Tensor, index: KeyIndex, kernel_size: int) -> KernelMap:
    """Kernel map of a stride-1 conv whose outputs are the inputs ``coords`` ``(N, 4)``.

    For odd ``kernel_size`` the map is symmetric: the pairs of offset ``-d`` are the swapped
    pairs of ``+d``, so only half of the offsets are searched.
    """
    if kernel_size % 2 == 0:
        raise ValueError(f"submanifold conv needs an odd kernel size, got {kernel_size}")
    n = coords.shape[0]
    offsets = kernel_offsets(kernel_size, coords.device)
    k3 = offsets.shape[0]
    centre = k3 // 2
    ins, outs = _gather_pairs(index, coords, offsets[:centre], stride=1)
    rows = torch.arange(n, device=coords.device)
    # offset k3-1-k is the negation of offset k: swap its pairs.
    ins_all = [*ins, rows, *(outs[k] for k in reversed(range(centre)))]
    outs_all = [*outs, rows, *(ins[k] for k in reversed(range(centre)))]
    return _pack(ins_all, outs_all, n, n, identity=centre)


def downsample_coords(coords: torch.Tensor, stride: int = 2) -> torch.Tensor:
    """Unique ``floor(coords / stride)`` of ``(N, 4)`` coords, sorted by key; ``(M, 4)``.

    The batch column is kept. The result has the dtype of ``coords``.
    """
    down = coords.clone()
    down[:, 1:] = torch.div(coords[:, 1:], stride, rounding_mode="floor")
    keys = torch.unique(encode_keys(down))
    out = torch.empty((keys.numel(), 4), dtype=torch.int64, device=coords.device)
    mask = (1 << AXIS_BITS) - 1
    out[:, 0] = keys >> (3 * AXIS_BITS)
    out[:, 1] = ((keys >> (2 * AXIS_BITS)) & mask) - AXIS_BIAS
    out[:, 2] = ((keys >> AXIS_BITS) & mask) - AXIS_BIAS
    out[:, 3] = (keys & mask) - AXIS_BIAS
    return out.to(coords.dtype)


def strided_kmap(
    in_index: KeyIndex, n_in: int, out_coords: torch.Tensor, kernel_size: int, stride: int
) -> KernelMap:
    """Kernel map of a strided conv from the indexed inputs to ``out_coords`` ``(M, 4)``."""
    offsets = kernel_offsets(kernel_size, out_coords.device)
    ins, outs = _gather_pairs(in_index, out_coords, offsets, stride=stride)
    return _pack(ins, outs, n_in, out_coords.shape[0], identity=None)
