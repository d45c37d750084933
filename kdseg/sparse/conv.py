"""Torchsparse-shaped sparse convolution module."""

from __future__ import annotations

import math

import torch
from torch import nn

from kdseg.sparse.functional import sparse_conv3d
from kdseg.sparse.tensor import SparseTensor


def _as_int(value: int | tuple[int, ...], what: str) -> int:
    """Accept an int or an isotropic tuple (``(2, 2, 2)``); anisotropic values are refused."""
    if isinstance(value, int):
        return value
    values = tuple(value)
    if len(values) != 3 or len(set(values)) != 1:
        raise ValueError(f"Conv3d: {what} must be an int or 3 equal ints, got {value!r}")
    return int(values[0])


class Conv3d(nn.Module):
    """Sparse 3D convolution: ``SparseTensor (N, C_in) -> SparseTensor (M, C_out)``.

    Args:
        in_channels, out_channels: feature widths.
        kernel_size: 1 or 3 for submanifold convs (``stride=1``), 2 or 3 for strided and
            transposed convs (``stride=2``).
        stride: 1 (submanifold: output coords = input coords) or 2 (downsample, or upsample when
            ``transposed``: back to the cached finer coordinate set).
        dilation: only 1 is implemented (accepted for interface compatibility).
        bias: add a learnable ``(C_out,)`` bias.
        transposed: transposed (upsampling) conv; reuses the kernel map of the strided conv
            with the same kernel size.

    The weight is ``(K^3, C_in, C_out)`` (torchsparse layout); offset ``k = (kx*K + ky)*K + kz``.
    Initialisation: Kaiming-uniform with fan-in ``K^3 * C_in`` (as ``nn.Conv3d``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int] = 3,
        stride: int | tuple[int, int, int] = 1,
        dilation: int | tuple[int, int, int] = 1,
        bias: bool = False,
        transposed: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _as_int(kernel_size, "kernel_size")
        self.stride = _as_int(stride, "stride")
        self.dilation = _as_int(dilation, "dilation")
        self.transposed = transposed
        if self.stride not in (1, 2):
            raise ValueError(f"Conv3d: stride must be 1 or 2, got {self.stride}")
        if self.stride == 1 and (self.kernel_size % 2 == 0 or transposed):
            raise ValueError(
                "Conv3d: stride 1 (submanifold) needs an odd kernel and transposed=False, got "
                f"kernel {self.kernel_size}, transposed={transposed}"
            )
        if self.dilation != 1:
            raise ValueError(f"Conv3d: only dilation 1 is implemented, got {self.dilation}")
        k3 = self.kernel_size**3
        self.weight = nn.Parameter(torch.empty(k3, in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform weights (``a = sqrt(5)``, as ``nn.Conv3d``) and matching bias bound."""
        fan_in = self.weight.shape[0] * self.in_channels
        bound = math.sqrt(6.0 / ((1 + 5.0) * fan_in))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            b = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -b, b)

    def forward(self, x: SparseTensor) -> SparseTensor:
        """Apply the convolution (see :func:`kdseg.sparse.functional.sparse_conv3d`)."""
        return sparse_conv3d(
            x,
            self.weight,
            self.kernel_size,
            stride=self.stride,
            dilation=self.dilation,
            bias=self.bias,
            transposed=self.transposed,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, bias={self.bias is not None}, transposed={self.transposed}"
        )
