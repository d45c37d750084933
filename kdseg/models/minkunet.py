"""MinkUNet: a sparse residual U-Net with configurable width and depth.

Layout (``n`` stages; ``E`` encoder and ``D`` decoder channels per stage)::

    stem:       conv3(C_in -> S) BN ReLU, conv3(S -> S) BN ReLU                 stride 1
    encoder i:  conv2 stride 2 (c -> c) BN ReLU, blocks(c -> E[i])             stride 2^(i+1)
    decoder i:  transposed conv2 stride 2 (c -> D[i]) BN ReLU,                  stride 2^(n-1-i)
                cat(skip), blocks(D[i] + skip -> D[i])

where the skip of decoder ``i`` is encoder stage ``n-2-i`` (the stem for the last decoder
stage). Output: ``D[-1]`` features per input voxel, same coordinates and order as the input.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from kdseg.errors import ConfigError
from kdseg.models.registry import Backbone, register_backbone
from kdseg.sparse import BatchNorm, Conv3d, ReLU, SparseTensor, add, cat


def conv_bn_relu(
    c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1, transposed: bool = False
) -> nn.Sequential:
    """``Conv3d -> BatchNorm -> ReLU`` on sparse tensors."""
    return nn.Sequential(
        Conv3d(c_in, c_out, kernel_size, stride=stride, transposed=transposed),
        BatchNorm(c_out),
        ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """Residual block: ``ReLU(BN(conv3(ReLU(BN(conv3(x))))) + shortcut(x))``.

    The shortcut is the identity when ``c_in == c_out`` and ``BN(conv1(x))`` otherwise.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            Conv3d(c_in, c_out, 3),
            BatchNorm(c_out),
            ReLU(inplace=True),
            Conv3d(c_out, c_out, 3),
            BatchNorm(c_out),
        )
        self.shortcut: nn.Module = (
            nn.Identity()
            if c_in == c_out
            else nn.Sequential(Conv3d(c_in, c_out, 1), BatchNorm(c_out))
        )
        self.relu = ReLU(inplace=True)

    def forward(self, x: SparseTensor) -> SparseTensor:
        return self.relu(add(self.main(x), self.shortcut(x)))


def _blocks(c_in: int, c_out: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(BasicBlock(c_in if i == 0 else c_out, c_out) for i in range(count)))


def _per_stage(value: int | Sequence[int], stages: int, key: str) -> list[int]:
    values = [value] * stages if isinstance(value, int) else list(value)
    if len(values) != stages or not all(isinstance(v, int) and v >= 1 for v in values):
        raise ConfigError(key, f"need {stages} positive ints (one per stage), got {value!r}")
    return values


class MinkUNet(Backbone):
    """Sparse residual U-Net (see the module docstring for the layout).

    Args:
        in_channels: input voxel feature width (4 for x, y, z, remission).
        stem_channels: width ``S`` of the stride-1 stem.
        encoder_channels: ``E``, one width per stage (the number of stages is its length).
        decoder_channels: ``D``, same length as ``encoder_channels``.
        encoder_blocks, decoder_blocks: residual blocks per stage (int or one per stage).
        default_voxel_size: voxel edge in metres this configuration is meant for.
    """

    def __init__(
        self,
        in_channels: int = 4,
        stem_channels: int = 16,
        encoder_channels: Sequence[int] = (16, 32, 64, 128),
        decoder_channels: Sequence[int] = (64, 48, 32, 32),
        encoder_blocks: int | Sequence[int] = 1,
        decoder_blocks: int | Sequence[int] = 1,
        default_voxel_size: float = 0.2,
    ) -> None:
        super().__init__()
        stages = len(encoder_channels)
        if stages < 1:
            raise ConfigError("encoder_channels", "need at least one stage")
        enc = _per_stage(list(encoder_channels), stages, "encoder_channels")
        dec = _per_stage(list(decoder_channels), stages, "decoder_channels")
        enc_blocks = _per_stage(encoder_blocks, stages, "encoder_blocks")
        dec_blocks = _per_stage(decoder_blocks, stages, "decoder_blocks")
        if in_channels < 1 or stem_channels < 1:
            raise ConfigError("in_channels", "in_channels and stem_channels must be >= 1")
        if default_voxel_size <= 0:
            raise ConfigError("default_voxel_size", f"must be > 0, got {default_voxel_size}")
        self.in_channels = in_channels
        self.out_channels = dec[-1]
        self.default_voxel_size = float(default_voxel_size)
        self.stem = nn.Sequential(
            conv_bn_relu(in_channels, stem_channels), conv_bn_relu(stem_channels, stem_channels)
        )
        skips = [stem_channels, *enc[:-1]]  # width at the input of each encoder stage
        self.encoder = nn.ModuleList()
        c = stem_channels
        for width, count in zip(enc, enc_blocks, strict=True):
            self.encoder.append(
                nn.Sequential(conv_bn_relu(c, c, kernel_size=2, stride=2), _blocks(c, width, count))
            )
            c = width
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for i, (width, count) in enumerate(zip(dec, dec_blocks, strict=True)):
            skip = skips[stages - 1 - i]
            self.up.append(conv_bn_relu(c, width, kernel_size=2, stride=2, transposed=True))
            self.decoder.append(_blocks(width + skip, width, count))
            c = width

    def forward(self, x: SparseTensor) -> SparseTensor:
        """``(V, in_channels)`` voxels -> ``(V, out_channels)`` at the same coordinates."""
        if x.num_channels != self.in_channels:
            raise ValueError(
                f"MinkUNet built for {self.in_channels} input channels, got {x.num_channels}"
            )
        out = self.stem(x)
        skips = [out]
        for stage in self.encoder:
            out = stage(out)
            skips.append(out)
        for i, (up, blocks) in enumerate(zip(self.up, self.decoder, strict=True)):
            out = blocks(cat([up(out), skips[-2 - i]]))
        return out


@register_backbone("minkunet18")
def minkunet18(in_channels: int = 4) -> MinkUNet:
    """Paper configuration (MinkUNet-18-like, as LaserMix's MMDetection3D config), 0.05 m voxels."""
    return MinkUNet(
        in_channels=in_channels,
        stem_channels=32,
        encoder_channels=(32, 64, 128, 256),
        decoder_channels=(256, 128, 96, 96),
        encoder_blocks=2,
        decoder_blocks=2,
        default_voxel_size=0.05,
    )


@register_backbone("minkunet_tiny")
def minkunet_tiny(in_channels: int = 4) -> MinkUNet:
    """CPU default of the embedded tables: stem 12, 1 block per stage, narrow decoder, 0.3 m."""
    return MinkUNet(
        in_channels=in_channels,
        stem_channels=12,
        encoder_channels=(16, 32, 64, 96),
        decoder_channels=(48, 32, 24, 16),
        encoder_blocks=1,
        decoder_blocks=1,
        default_voxel_size=0.3,
    )


@register_backbone("minkunet_small")
def minkunet_small(in_channels: int = 4) -> MinkUNet:
    """Small network for CPU runs at finer voxels: stem 16, 1 block per stage, 0.2 m voxels."""
    return MinkUNet(
        in_channels=in_channels,
        stem_channels=16,
        encoder_channels=(16, 32, 64, 128),
        decoder_channels=(64, 48, 32, 32),
        encoder_blocks=1,
        decoder_blocks=1,
        default_voxel_size=0.2,
    )
