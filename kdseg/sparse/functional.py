"""Sparse convolution as gather -> matrix multiply -> scatter-add per kernel offset.

:class:`_SparseConvFn` is a custom autograd function so that the backward pass recomputes the
gathers instead of keeping one ``(pairs, C_in)`` buffer per offset alive between forward and
backward (only the input features, the weight and the kernel map are saved).
"""

from __future__ import annotations

from typing import Any

import torch

from kdseg.sparse import profile
from kdseg.sparse.backend import resolve_backend
from kdseg.sparse.kmap import KernelMap
from kdseg.sparse.tensor import SparseTensor, as_stride


def _scatter_rows(
    rows: torch.Tensor, csr: torch.Tensor, index: torch.Tensor, n: int
) -> torch.Tensor:
    """Sum ``rows`` ``(P', C)`` into ``n`` voxels: ``out[index[p]] += rows[p]``; ``(n, C)``.

    On the CPU through the map's 0/1 CSR matrix (one sparse-dense multiply, about 4x faster than
    ``index_add_`` there), elsewhere with ``index_add_``.
    """
    if rows.device.type == "cpu" and rows.dtype == torch.float32:
        return csr @ rows
    return rows.new_zeros((n, rows.shape[1])).index_add_(0, index, rows)


def _apply_kmap(
    feats: torch.Tensor, weight: torch.Tensor, kmap: KernelMap, transposed: bool, n_out: int
) -> torch.Tensor:
    """``out[o] = sum_k sum_(i,o) feats[i] @ weight[k]`` over the map's pairs; ``(n_out, C_out)``.

    With ``transposed`` the roles of the map's input and output rows are swapped. One gather of
    all non-identity pairs, one matrix multiply per offset into a shared buffer, one scatter.
    """
    src, dst, csr = (
        (kmap.rest_out, kmap.rest_in, kmap.scatter_in)
        if transposed
        else (kmap.rest_in, kmap.rest_out, kmap.scatter_out)
    )
    gathered = feats.index_select(0, src)
    products = feats.new_empty((src.numel(), weight.shape[2]))
    for k, lo, hi in kmap.segments:
        torch.mm(gathered[lo:hi], weight[k], out=products[lo:hi])
    out = _scatter_rows(products, csr, dst, n_out)
    if kmap.identity is not None:
        out = out.addmm_(feats, weight[kmap.identity])
    return out


def _weight_grad(
    feats: torch.Tensor, grad_out: torch.Tensor, kmap: KernelMap, transposed: bool, k3: int
) -> torch.Tensor:
    """``dL/dW`` ``(K^3, C_in, C_out)``: per offset ``gather(feats)^T @ gather(grad_out)``."""
    src, dst = (kmap.rest_out, kmap.rest_in) if transposed else (kmap.rest_in, kmap.rest_out)
    grad_w = feats.new_zeros((k3, feats.shape[1], grad_out.shape[1]))
    g_in = feats.index_select(0, src)
    g_out = grad_out.index_select(0, dst)
    for k, lo, hi in kmap.segments:
        torch.mm(g_in[lo:hi].t(), g_out[lo:hi], out=grad_w[k])
    if kmap.identity is not None:
        torch.mm(feats.t(), grad_out, out=grad_w[kmap.identity])
    return grad_w


class _SparseConvFn(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        feats: torch.Tensor,
        weight: torch.Tensor,
        kmap: KernelMap,
        transposed: bool,
    ) -> torch.Tensor:
        n_out = kmap.num_in if transposed else kmap.num_out
        ctx.save_for_backward(feats, weight)
        ctx.kmap = kmap
        ctx.transposed = transposed
        flops = 2.0 * kmap.num_pairs * weight.shape[1] * weight.shape[2]
        prof = profile.active()
        if prof is not None:
            prof.conv_shapes.append((kmap.num_pairs, weight.shape[1], weight.shape[2]))
        with profile.phase("conv_fwd", feats.device, flops):
            return _apply_kmap(feats, weight, kmap, transposed, n_out)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        feats, weight = ctx.saved_tensors
        kmap: KernelMap = ctx.kmap
        grad_out = grad_out.contiguous()
        grad_feats = grad_w = None
        flops = 2.0 * kmap.num_pairs * weight.shape[1] * weight.shape[2]
        with profile.phase("conv_bwd", feats.device, flops * sum(ctx.needs_input_grad[:2])):
            if ctx.needs_input_grad[0]:
                # the adjoint of the conv is the conv with swapped roles and W[k]^T.
                grad_feats = _apply_kmap(
                    grad_out,
                    weight.transpose(1, 2),
                    kmap,
                    not ctx.transposed,
                    feats.shape[0],
                )
            if ctx.needs_input_grad[1]:
                grad_w = _weight_grad(feats, grad_out, kmap, ctx.transposed, weight.shape[0])
        return grad_feats, grad_w, None, None


def sparse_conv3d(
    x: SparseTensor,
    weight: torch.Tensor,
    kernel_size: int,
    stride: int = 1,
    dilation: int = 1,
    bias: torch.Tensor | None = None,
    transposed: bool = False,
) -> SparseTensor:
    """Sparse 3D convolution of ``x`` with ``weight`` ``(K^3, C_in, C_out)``.

    * ``stride == 1``: submanifold conv (output coords = input coords), odd ``kernel_size``.
    * ``stride == 2`` and not ``transposed``: downsampling to ``unique(floor(coords / 2))``.
    * ``stride == 2`` and ``transposed``: upsampling to the finer coordinate set that the
      strided conv with the same kernel size produced ``x``'s level from (cached in ``x.cache``).

    Offsets follow :mod:`kdseg.sparse.kmap` (dense ``conv3d`` with ``padding=(K-1)//2``).
    """
    k3 = kernel_size**3
    if weight.ndim != 3 or weight.shape[0] != k3 or weight.shape[1] != x.num_channels:
        raise ValueError(
            f"weight must be ({k3}, {x.num_channels}, C_out) for kernel {kernel_size} on "
            f"{x.num_channels} input channels, got {tuple(weight.shape)}"
        )
    if dilation != 1:
        raise ValueError(f"only dilation 1 is implemented, got {dilation}")
    if resolve_backend(device=x.feats.device) == "spconv":
        from kdseg.sparse.spconv_backend import spconv_conv3d

        return spconv_conv3d(x, weight, kernel_size, stride, bias=bias, transposed=transposed)
    if stride == 1:
        if transposed:
            raise ValueError("a transposed conv needs stride > 1 (use stride=1 without transposed)")
        kmap = x.cache.submanifold(x.stride, kernel_size, dilation)
        out_stride = x.stride
    elif transposed:
        out_stride, kmap = x.cache.upsample(x.stride, kernel_size, stride, dilation)
    else:
        out_stride, kmap = x.cache.downsample(x.stride, kernel_size, stride, dilation)
    feats = _SparseConvFn.apply(x.feats.contiguous(), weight, kmap, transposed)
    if bias is not None:
        feats = feats + bias
    return SparseTensor(
        feats, x.cache.coords[as_stride(out_stride)], out_stride, cache=x.cache, check=False
    )
