"""The spconv backend: kdseg's ``Conv3d`` run by spconv 2.x (meant for CUDA).

kdseg keeps its own weights (``(K^3, C_in, C_out)``) and its own ``SparseTensor``; for every conv
this module hands the features to an spconv module of the same geometry with the weight viewed
in spconv's KRSC layout (``(C_out, kx, ky, kz, C_in)``), so checkpoints do not depend on the
backend. Index pairs are shared the spconv way: each level of a batch keeps one
``SparseConvTensor`` in the batch's :class:`~kdseg.sparse.tensor.SparseCache` (``extras``), and
convs of one level and kernel use one ``indice_key``:

* submanifold, level ``s``, kernel ``k``: ``subm{s}k{k}``;
* strided (stride 2) from level ``s``: ``down{s}k{k}``; its output level keeps spconv's output
  indices *in spconv's row order* (the cache's coordinate set of that level is set from them,
  so BatchNorm, ``cat`` and ``add`` see one order per level);
* transposed from level ``2s``: ``SparseInverseConv3d`` with the key of the strided conv that
  made the level, back to level ``s`` in that level's order.

Geometry is kdseg's (docs/sparse.md): coordinates are level indices, the K=2 strided conv maps
``o`` to its children ``2o + {0,1}^3`` (spconv: ``padding 0``), K=3 convs pad by 1. spconv needs
non-negative coordinates (``voxelize`` shifts each sample to 0).

Validity: spconv 2.3.8 on the CPU is only correct with one torch thread, and its backward
needs a GPU (it calls into CUDA), so on the CPU this backend is refused unless
``torch.get_num_threads() == 1``, and only its forward can run there; tests use exactly that to
check it against the PyTorch backend.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from kdseg.sparse.tensor import SparseTensor, as_stride

SHAPE_LEVELS = 8
"""Stride-2 levels the input grid is padded for (2^8 = 256 voxels per axis at most)."""


@functools.cache
def _spconv_module(kind: str, k: int, stride: int, c_in: int, c_out: int) -> Any:
    """One spconv module per geometry (``kind``: ``subm``, ``down`` or ``inverse``). It only
    carries configuration: weights are passed in, and the caller sets its ``indice_key``."""
    import spconv.pytorch as spconv

    if kind == "subm":
        return spconv.SubMConv3d(c_in, c_out, k, bias=False, indice_key="")
    if kind == "inverse":
        return spconv.SparseInverseConv3d(c_in, c_out, k, indice_key="", bias=False)
    return spconv.SparseConv3d(
        c_in, c_out, k, stride=stride, padding=(k - 1) // 2, bias=False, indice_key=""
    )


def _level_tensor(x: SparseTensor, spconv: Any) -> Any:
    """The ``SparseConvTensor`` of ``x``'s level (created for the input level on first use)."""
    levels: dict[tuple[int, int, int], Any] = x.cache.extras.setdefault("spconv", {})
    sct = levels.get(x.stride)
    if sct is None:
        coords = x.coords
        if coords.numel() and int(coords[:, 1:].min()) < 0:
            raise ValueError(
                "the spconv backend needs non-negative voxel coordinates (voxelize shifts "
                "each sample to 0); got a negative one"
            )
        # spconv drops outputs whose window leaves the grid, so the grid is padded to a
        # multiple of 2^SHAPE_LEVELS: every level's floor(c / 2) then stays inside it.
        top = (coords[:, 1:].max(dim=0).values + 1).tolist() if coords.numel() else [1, 1, 1]
        unit = 1 << SHAPE_LEVELS
        shape = [-(-int(t) // unit) * unit for t in top]
        sct = spconv.SparseConvTensor(x.feats, coords.to(torch.int32), shape, max(x.batch_size, 1))
        levels[x.stride] = sct
    return sct


def _check_cpu_threads(device: torch.device) -> None:
    if device.type == "cpu" and torch.get_num_threads() != 1:
        raise RuntimeError(
            "the spconv backend on the CPU is only correct with one torch thread "
            f"(torch.get_num_threads() is {torch.get_num_threads()}); use the 'torch' backend"
        )


def spconv_conv3d(
    x: SparseTensor,
    weight: torch.Tensor,
    kernel_size: int,
    stride: int = 1,
    bias: torch.Tensor | None = None,
    transposed: bool = False,
) -> SparseTensor:
    """:func:`kdseg.sparse.functional.sparse_conv3d` computed by spconv (same arguments)."""
    import spconv.pytorch as spconv

    _check_cpu_threads(x.feats.device)
    k = kernel_size
    if k == 1 and stride == 1:  # a per-voxel linear map (spconv's 1x1 path assumes its layout)
        feats = x.feats @ weight[0] if bias is None else torch.addmm(bias, x.feats, weight[0])
        return x.replace_feats(feats)
    c_in, c_out = weight.shape[1], weight.shape[2]
    krsc = weight.reshape(k, k, k, c_in, c_out).permute(4, 0, 1, 2, 3).contiguous()
    level = as_stride(x.stride)[0]
    sct = _level_tensor(x, spconv).replace_feature(x.feats.contiguous())
    if stride == 1:
        kind, key, out_stride = "subm", f"subm{level}k{k}", x.stride
    elif transposed:
        fine = level // stride
        kind, key, out_stride = "inverse", f"down{fine}k{k}", as_stride(fine)
    else:
        if k != stride:
            raise ValueError(
                f"the spconv backend runs strided convs with kernel == stride only (got kernel "
                f"{k}, stride {stride}): spconv's output set for overlapping kernels differs "
                "from kdseg's unique(floor(c / 2))"
            )
        kind, key, out_stride = "down", f"down{level}k{k}", as_stride(level * stride)
    module = _spconv_module(kind, k, stride, c_in, c_out)
    module.indice_key = key
    out = module._conv_forward(module.training, sct, krsc, None)
    levels: dict[tuple[int, int, int], Any] = x.cache.extras["spconv"]
    if out_stride not in levels:
        levels[out_stride] = out
        x.cache.coords[out_stride] = out.indices.to(x.coords.dtype)
    else:  # keep the level's own tensor (and its indice pairs) for later convs
        levels[out_stride].indice_dict.update(out.indice_dict)
    feats = out.features if bias is None else out.features + bias
    return SparseTensor(feats, x.cache.coords[out_stride], out_stride, cache=x.cache, check=False)
