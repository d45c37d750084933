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

import functools
import warnings
from dataclasses import dataclass, field

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

    For the convs the map also holds the pairs *without* the identity offset, compacted
    (``rest_in``, ``rest_out`` ``(P',)`` and ``segments``: ``(k, lo, hi)`` slices of them), and
    two 0/1 CSR matrices that sum pair rows into voxels: ``scatter_out`` ``(num_out, P')`` and
    ``scatter_in`` ``(num_in, P')``, built when a conv first needs them (one sparse-dense matrix
    multiply replaces a scatter-add; on the CPU it is about four times faster than
    ``index_add_``, measured in docs/sparse.md; other devices never build them).
    """

    in_idx: torch.Tensor
    out_idx: torch.Tensor
    bounds: tuple[int, ...]
    num_in: int
    num_out: int
    identity: int | None = None
    rest_in: torch.Tensor = field(init=False, repr=False)
    rest_out: torch.Tensor = field(init=False, repr=False)
    segments: tuple[tuple[int, int, int], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        keep, segments, pos = [], [], 0
        for k in range(len(self.bounds) - 1):
            lo, hi = self.bounds[k], self.bounds[k + 1]
            if k == self.identity or hi == lo:
                continue
            keep.append((lo, hi))
            segments.append((k, pos, pos + hi - lo))
            pos += hi - lo
        if keep:
            rest_in = torch.cat([self.in_idx[lo:hi] for lo, hi in keep])
            rest_out = torch.cat([self.out_idx[lo:hi] for lo, hi in keep])
        else:
            rest_in = rest_out = self.in_idx[:0]
        object.__setattr__(self, "rest_in", rest_in)
        object.__setattr__(self, "rest_out", rest_out)
        object.__setattr__(self, "segments", tuple(segments))

    @functools.cached_property
    def scatter_out(self) -> torch.Tensor:
        """CSR ``(num_out, P')`` summing pair rows into output voxels (built on first use)."""
        return rows_to_csr(self.rest_out, self.num_out)

    @functools.cached_property
    def scatter_in(self) -> torch.Tensor:
        """CSR ``(num_in, P')`` summing pair rows into input voxels (built on first use)."""
        return rows_to_csr(self.rest_in, self.num_in)

    @property
    def num_pairs(self) -> int:
        """Total number of (input, output) pairs, the identity offset included."""
        return self.bounds[-1]

    def pairs(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(in_idx, out_idx)`` of offset ``k``."""
        lo, hi = self.bounds[k], self.bounds[k + 1]
        return self.in_idx[lo:hi], self.out_idx[lo:hi]


def rows_to_csr(rows: torch.Tensor, n: int) -> torch.Tensor:
    """0/1 CSR matrix ``A`` ``(n, P)`` with ``A[rows[p], p] = 1``: ``A @ Y`` sums the rows of
    ``Y`` ``(P, C)`` into ``n`` rows, like ``zeros(n, C).index_add_(0, rows, Y)``."""
    order = torch.argsort(rows, stable=True)
    counts = torch.bincount(rows, minlength=n)
    crow = torch.zeros(n + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(counts, 0, out=crow[1:])
    ones = torch.ones(rows.numel(), dtype=torch.float32, device=rows.device)
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, order, ones, size=(n, rows.numel()))


def _find_neighbours(
    index: KeyIndex, base: torch.Tensor, base_keys: torch.Tensor, offsets: torch.Tensor
) -> torch.Tensor:
    """Row in ``index`` of ``base + offset`` for every offset and base row; ``(K^3, M)``, -1 absent.

    ``base`` ``(M, 4)`` are the query centres (already multiplied by the conv stride) and
    ``base_keys`` their keys. When the keys are ascending, every offset's queries are too, which
    keeps ``searchsorted`` cache friendly. Queries are key arithmetic (``key + delta``) unless a
    centre lies so close to the key budget's edge that a field could overflow; then they are
    encoded one by one and out-of-range neighbours are reported absent.
    """
    n = index.keys.numel()
    if n == 0 or base.shape[0] == 0:
        return torch.full(
            (offsets.shape[0], base.shape[0]), -1, dtype=torch.int64, device=base.device
        )
    reach = int(offsets.abs().max()) if offsets.numel() else 0
    lo = int(base[:, 1:].min())
    hi = int(base[:, 1:].max())
    if lo - reach >= AXIS_MIN and hi + reach <= AXIS_MAX:
        return _find_by_columns(index, base_keys, offsets.tolist())
    shift = torch.zeros((offsets.shape[0], 4), dtype=torch.int64, device=offsets.device)
    shift[:, 1:] = offsets
    query = (base[None, :, :] + shift[:, None, :]).reshape(-1, 4)
    return index.lookup(query).view(offsets.shape[0], base.shape[0])


def _find_by_columns(
    index: KeyIndex, base_keys: torch.Tensor, offsets: list[list[int]]
) -> torch.Tensor:
    """:func:`_find_neighbours` by key arithmetic, one binary search per (dx, dy) column.

    Offsets that differ only by consecutive dz are consecutive keys, so after finding the first
    one of a column the next ones are at most one position further each: ``keys[pos] == q + j``
    decides a hit and ``pos += hit`` steps past it. All columns are searched and probed
    together (a handful of tensor ops per map, whatever the kernel size).
    """
    keys, n = index.keys, index.keys.numel()
    columns: list[list[int]] = []  # offset indices of each column, dz ascending by one
    for k, (dx, dy, dz) in enumerate(offsets):
        if columns and offsets[columns[-1][-1]] == [dx, dy, dz - 1]:
            columns[-1].append(k)
        else:
            columns.append([k])
    starts = torch.tensor(
        [
            (offsets[c[0]][0] << (2 * AXIS_BITS))
            + (offsets[c[0]][1] << AXIS_BITS)
            + offsets[c[0]][2]
            for c in columns
        ],
        dtype=torch.int64,
        device=keys.device,
    )
    query = base_keys[None, :] + starts[:, None]  # (columns, M)
    pos = torch.searchsorted(keys, query)
    depth = max(len(c) for c in columns)
    probes = []
    for _ in range(depth):
        at = pos.clamp(max=n - 1)
        hit = keys[at] == query
        probes.append(torch.where(hit, index.perm[at], -1))
        pos = pos + hit
        query = query + 1
    stacked = torch.stack(probes, dim=1)  # (columns, depth, M)
    rows = [ci * depth + j for ci, c in enumerate(columns) for j in range(len(c))]
    flat = stacked.view(len(columns) * depth, -1)
    if len(rows) == flat.shape[0]:
        return flat
    return flat.index_select(0, torch.tensor(rows, device=keys.device))


def _bounds(counts: list[int]) -> tuple[int, ...]:
    """Slice bounds ``(0, c0, c0 + c1, ...)`` of consecutive groups of ``counts`` pairs."""
    bounds = [0]
    for count in counts:
        bounds.append(bounds[-1] + int(count))
    return tuple(bounds)


def _pack(
    found: torch.Tensor, out_rows: torch.Tensor, n_in: int, n_out: int, identity: int | None
) -> KernelMap:
    """Pairs of ``found`` ``(K^3, M)`` (input row or -1 for output row ``out_rows[m]``)."""
    hit = found >= 0
    return KernelMap(
        in_idx=found[hit],
        out_idx=out_rows.expand_as(found)[hit],
        bounds=_bounds(hit.sum(dim=1).tolist()),
        num_in=n_in,
        num_out=n_out,
        identity=identity,
    )


def submanifold_kmap(coords: torch.Tensor, index: KeyIndex, kernel_size: int) -> KernelMap:
    """Kernel map of a stride-1 conv whose outputs are the inputs ``coords`` ``(N, 4)``.

    For odd ``kernel_size`` the map is symmetric: the pairs of offset ``-d`` are the swapped
    pairs of ``+d``, so only the offsets before the centre are searched. The output rows are
    visited in key order (``index.perm``), so each offset's queries ascend.
    """
    if kernel_size % 2 == 0:
        raise ValueError(f"submanifold conv needs an odd kernel size, got {kernel_size}")
    n = coords.shape[0]
    offsets = kernel_offsets(kernel_size, coords.device)
    centre = offsets.shape[0] // 2
    rows = index.perm
    if centre == 0:  # 1x1x1: the identity only
        return KernelMap(rows, rows, (0, n), n, n, identity=0)
    base = coords.to(torch.int64)[rows]
    found = _find_neighbours(index, base, index.keys, offsets[:centre])  # (centre, N)
    hit = found >= 0
    outs = rows.expand_as(found)
    # offsets centre+1 .. K^3-1 are the negations of centre-1 .. 0: swapped pairs, reversed.
    hit_r, found_r, outs_r = hit.flip(0), found.flip(0), outs.flip(0)
    counts = hit.sum(dim=1).tolist()
    return KernelMap(
        in_idx=torch.cat([found[hit], rows, outs_r[hit_r]]),
        out_idx=torch.cat([outs[hit], rows, found_r[hit_r]]),
        bounds=_bounds([*counts, n, *reversed(counts)]),
        num_in=n,
        num_out=n,
        identity=centre,
    )


def downsample_coords(coords: torch.Tensor, stride: int = 2) -> torch.Tensor:
    """Unique ``floor(coords / stride)`` of ``(N, 4)`` coords, sorted by key; ``(M, 4)``.

    The batch column is kept. The result has the dtype of ``coords``.
    """
    return _decode_keys(torch.unique(encode_keys(_floor_div(coords, stride)))).to(coords.dtype)


def _floor_div(coords: torch.Tensor, stride: int) -> torch.Tensor:
    """``(N, 4)`` coords with x, y, z floor-divided by ``stride`` (batch column kept)."""
    down = coords.clone()
    down[:, 1:] = torch.div(coords[:, 1:], stride, rounding_mode="floor")
    return down


def _decode_keys(keys: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode_keys`: ``(N,)`` int64 keys -> ``(N, 4)`` int64 coords."""
    out = torch.empty((keys.numel(), 4), dtype=torch.int64, device=keys.device)
    mask = (1 << AXIS_BITS) - 1
    out[:, 0] = keys >> (3 * AXIS_BITS)
    out[:, 1] = ((keys >> (2 * AXIS_BITS)) & mask) - AXIS_BIAS
    out[:, 2] = ((keys >> AXIS_BITS) & mask) - AXIS_BIAS
    out[:, 3] = (keys & mask) - AXIS_BIAS
    return out


def downsample_kmap(coords: torch.Tensor, stride: int) -> tuple[torch.Tensor, KernelMap]:
    """Coarse coordinates and kernel map of a conv with ``kernel_size == stride`` (no overlap).

    Every input voxel has exactly one output, its parent ``floor(c / stride)``, through the
    offset given by ``c mod stride``; so no search is needed: ``torch.unique``'s inverse gives
    the parents. Same result as :func:`downsample_coords` + :func:`strided_kmap`.
    """
    c = coords.to(torch.int64)
    down = _floor_div(c, stride)
    keys, parent = torch.unique(encode_keys(down), return_inverse=True)
    rem = c[:, 1:] - down[:, 1:] * stride
    k = (rem[:, 0] * stride + rem[:, 1]) * stride + rem[:, 2]
    order = torch.argsort(k, stable=True)
    kmap = KernelMap(
        in_idx=order,
        out_idx=parent[order],
        bounds=_bounds(torch.bincount(k, minlength=stride**3).tolist()),
        num_in=coords.shape[0],
        num_out=keys.numel(),
    )
    return _decode_keys(keys).to(coords.dtype), kmap


def strided_kmap(
    in_index: KeyIndex, n_in: int, out_coords: torch.Tensor, kernel_size: int, stride: int
) -> KernelMap:
    """Kernel map of a strided conv from the indexed inputs to ``out_coords`` ``(M, 4)``."""
    offsets = kernel_offsets(kernel_size, out_coords.device)
    base = out_coords.to(torch.int64).clone()
    base[:, 1:] *= stride
    # out_coords from downsample_coords are key-sorted, and so are their multiples: each
    # offset's queries ascend. Centres outside the key budget take the checked path.
    base_keys = encode_keys(base)
    rows = torch.arange(out_coords.shape[0], device=out_coords.device)
    found = _find_neighbours(in_index, base, base_keys, offsets)
    return _pack(found, rows, n_in, out_coords.shape[0], identity=None)
