"""Sparse 3D convolution with a torchsparse-shaped interface (plain-PyTorch backend).

Public API::

    SparseTensor(feats (N, C), coords (N, 4) [b, x, y, z], stride=1)
    Conv3d(in_channels, out_channels, kernel_size=3, stride=1, dilation=1, bias=False,
           transposed=False)
    BatchNorm(num_features), ReLU(), LeakyReLU(), cat([a, b]), add(a, b)
    sparse_conv3d(x, weight, kernel_size, stride, dilation, bias, transposed)
    PhaseProfiler()  # per-phase timing of the backend
    resolve_backend(requested, device), available_backends(), use_backend(name)

See docs/sparse.md for conventions and measured performance.
"""

from kdseg.sparse.backend import available_backends, resolve_backend, use_backend
from kdseg.sparse.conv import Conv3d
from kdseg.sparse.functional import sparse_conv3d
from kdseg.sparse.nn import BatchNorm, LeakyReLU, ReLU, add, cat
from kdseg.sparse.profile import PhaseProfiler
from kdseg.sparse.tensor import SparseCache, SparseTensor

__all__ = [
    "BatchNorm",
    "Conv3d",
    "LeakyReLU",
    "PhaseProfiler",
    "ReLU",
    "SparseCache",
    "SparseTensor",
    "add",
    "available_backends",
    "cat",
    "resolve_backend",
    "sparse_conv3d",
    "use_backend",
]
