"""Range-view backbones: a 2D U-Net over the spherical projection of a LiDAR scan.

The range view is a published setting of the semi-supervised LiDAR benchmarks (LaserMix reports
FIDNet range-view results beside the voxel ones; RangeNet++, SalsaNext and FIDNet all segment the
``H x W`` spherical image of a scan). On a CPU a dense 2D convolution over a 32 x 512 image is
several times cheaper than a sparse 3D convolution over the same scan (docs/baselines.md), so
the CPU default scale uses one of these; the paper scale keeps MinkUNet-18.

Layout of :class:`RangeUNet` (widths ``c_0 .. c_L``): a stem of two 3x3 conv-BN-LeakyReLU at full
resolution (``c_0``), ``L`` encoder stages each halving both image axes (a strided 3x3 conv then
a 3x3 conv), ``L`` decoder stages (nearest upsampling, concatenation with the encoder feature of
the same resolution, two 3x3 convs). Output: ``c_0`` features per pixel at full resolution.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kdseg.errors import ConfigError
from kdseg.models.registry import RangeBackbone, register_backbone


def conv_bn_act(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (no bias), BatchNorm, LeakyReLU(0.1)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.1, inplace=True),
    )


class RangeUNet(RangeBackbone):
    """2D U-Net on range images: ``(B, in_channels, H, W) -> (B, widths[0], H, W)``.

    Args:
        in_channels: input channels per pixel (the range segmenter feeds range, x, y, z,
            remission and an occupancy mask: 6).
        widths: channel width per resolution level, full resolution first; ``len(widths) - 1``
            halvings, so ``H`` and ``W`` should be divisible by ``2 ** (len(widths) - 1)``
            (other sizes work; the decoder upsamples to each skip's exact size).
    """

    def __init__(self, in_channels: int = 6, widths: Sequence[int] = (16, 32, 64, 128)) -> None:
        super().__init__()
        widths = list(widths)
        if len(widths) < 1 or not all(isinstance(w, int) and w >= 1 for w in widths):
            raise ConfigError("widths", f"need positive ints, one per level, got {widths!r}")
        if in_channels < 1:
            raise ConfigError("in_channels", f"must be >= 1, got {in_channels}")
        self.in_channels = in_channels
        self.out_channels = widths[0]
        self.stem = nn.Sequential(conv_bn_act(in_channels, widths[0]), conv_bn_act(*widths[:1] * 2))
        self.down = nn.ModuleList(
            nn.Sequential(conv_bn_act(a, b, stride=2), conv_bn_act(b, b))
            for a, b in itertools.pairwise(widths)
        )
        self.up = nn.ModuleList(
            nn.Sequential(conv_bn_act(b + a, a), conv_bn_act(a, a))
            for a, b in reversed(list(itertools.pairwise(widths)))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"RangeUNet built for (B, {self.in_channels}, H, W) input, got {tuple(x.shape)}"
            )
        skips = [self.stem(x)]
        for stage in self.down:
            skips.append(stage(skips[-1]))
        out = skips.pop()
        for stage in self.up:
            skip = skips.pop()
            out = F.interpolate(out, size=skip.shape[-2:], mode="nearest")
            out = stage(torch.cat([out, skip], dim=1))
        return out


@register_backbone("range_unet_tiny", view="range")
def range_unet_tiny(in_channels: int = 6) -> RangeUNet:
    """Widths 8-16-32-64 (about 0.12 M parameters with a 19-class head)."""
    return RangeUNet(in_channels, (8, 16, 32, 64))


@register_backbone("range_unet_small", view="range")
def range_unet_small(in_channels: int = 6) -> RangeUNet:
    """Widths 16-32-64-128 (about 0.49 M parameters with a 19-class head)."""
    return RangeUNet(in_channels, (16, 32, 64, 128))


@register_backbone("range_unet", view="range")
def range_unet(in_channels: int = 6) -> RangeUNet:
    """Widths 32-64-128-256 (about 1.9 M parameters with a 19-class head)."""
    return RangeUNet(in_channels, (32, 64, 128, 256))
