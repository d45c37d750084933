"""Building blocks shared by the continual-segmentation networks.

The official MiB / PLOP / LGKD code builds every normalisation as in-place ABN
(``InPlaceABNSync(activation="leaky_relu", activation_param=0.01)``): one module that applies
batch normalisation and then a leaky ReLU of slope 0.01. "In-place" only saves memory; the
forward values are those of BatchNorm followed by the activation. :class:`NormAct` is that pair
with plain :class:`torch.nn.BatchNorm2d` (``nn.SyncBatchNorm.convert_sync_batchnorm`` converts it
for multi-GPU runs), and :class:`ResidualBlock` reproduces the residual block of their
``modules/residual.py``: the last normalisation of the block and of the projection has no
activation, the activation is applied after the sum, and the block also returns that
pre-activation sum, which PLOP distils ("attentions").
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from kdseg.errors import ConfigError

ACTIVATIONS: tuple[str, ...] = ("leaky_relu", "relu", "identity")
"""``leaky_relu`` (slope :data:`LEAKY_SLOPE`, the official default), ``relu`` (torchvision's
ResNet), ``identity``."""

LEAKY_SLOPE: float = 0.01
"""Negative slope of the official in-place ABN leaky ReLU (``activation_param=.01``)."""


def check_activation(activation: str) -> str:
    """``activation`` if it is one of :data:`ACTIVATIONS`; ``ConfigError('activation')`` else."""
    if activation not in ACTIVATIONS:
        raise ConfigError("activation", f"must be one of {ACTIVATIONS}, got {activation!r}")
    return activation


def activate(x: torch.Tensor, activation: str) -> torch.Tensor:
    """Apply ``activation`` (one of :data:`ACTIVATIONS`) to ``x`` (any shape)."""
    if activation == "leaky_relu":
        return F.leaky_relu(x, LEAKY_SLOPE)
    if activation == "relu":
        return F.relu(x)
    return x


class NormAct(nn.Module):
    """``BatchNorm2d(channels)`` then ``activation``: ``(B, C, H, W) -> (B, C, H, W)``.

    The state-dict keys are ``bn.weight``, ``bn.bias``, ``bn.running_mean``, ``bn.running_var``
    (an in-place ABN checkpoint has the same tensors without the ``bn.`` level;
    :func:`kdseg.continual.resnet.load_backbone_weights` maps them).
    """

    def __init__(self, channels: int, activation: str = "leaky_relu") -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.activation = check_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activate(self.bn(x), self.activation)


def conv_gain(activation: str) -> float:
    """Xavier gain for convolutions followed by ``activation`` (``nn.init.calculate_gain``)."""
    if activation == "leaky_relu":
        return nn.init.calculate_gain("leaky_relu", LEAKY_SLOPE)
    if activation == "relu":
        return nn.init.calculate_gain("relu")
    return 1.0


class ResidualBlock(nn.Module):
    """Residual block of MiB/PLOP's ``modules/residual.py`` (``ResidualBlock``).

    Bottleneck (``len(channels) == 3``): 1x1 conv -> 3x3 conv (``stride``, ``dilation``) ->
    1x1 conv, each followed by a :class:`NormAct` (the last one without activation). Basic
    (``len(channels) == 2``): two 3x3 convs (the first strided), the second normalisation without
    activation. A projection (1x1 conv with ``stride`` + BN, no activation) replaces the identity
    when the stride or the width changes. The stride sits on the 3x3 convolution (ResNet v1.5).

    ``forward((B, C_in, H, W)) -> (out, pre)``, both ``(B, channels[-1], H/stride, W/stride)``:
    ``pre`` is the sum of the branch and the shortcut, ``out = activation(pre)``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: tuple[int, ...],
        stride: int = 1,
        dilation: int = 1,
        activation: str = "leaky_relu",
    ) -> None:
        super().__init__()
        if len(channels) not in (2, 3):
            raise ConfigError("channels", f"a block has 2 or 3 widths, got {channels}")
        self.activation = check_activation(activation)
        pad = dilation
        if len(channels) == 3:
            layers = [
                ("conv1", nn.Conv2d(in_channels, channels[0], 1, bias=False)),
                ("bn1", NormAct(channels[0], activation)),
                (
                    "conv2",
                    nn.Conv2d(
                        channels[0], channels[1], 3, stride, pad, dilation=dilation, bias=False
                    ),
                ),
                ("bn2", NormAct(channels[1], activation)),
                ("conv3", nn.Conv2d(channels[1], channels[2], 1, bias=False)),
                ("bn3", NormAct(channels[2], "identity")),
            ]
        else:
            layers = [
                (
                    "conv1",
                    nn.Conv2d(
                        in_channels, channels[0], 3, stride, pad, dilation=dilation, bias=False
                    ),
                ),
                ("bn1", NormAct(channels[0], activation)),
                (
                    "conv2",
                    nn.Conv2d(channels[0], channels[1], 3, 1, pad, dilation=dilation, bias=False),
                ),
                ("bn2", NormAct(channels[1], "identity")),
            ]
        self.convs = nn.Sequential(OrderedDict(layers))
        self.proj_conv: nn.Conv2d | None = None
        self.proj_bn: NormAct | None = None
        if stride != 1 or in_channels != channels[-1]:
            self.proj_conv = nn.Conv2d(in_channels, channels[-1], 1, stride, bias=False)
            self.proj_bn = NormAct(channels[-1], "identity")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.proj_conv is not None and self.proj_bn is not None:
            shortcut = self.proj_bn(self.proj_conv(x))
        else:
            shortcut = x
        pre = self.convs(x) + shortcut
        return activate(pre, self.activation), pre


class Stage(nn.Module):
    """A sequence of :class:`ResidualBlock` named ``block1``, ``block2``, ... (the official
    names). ``forward(x) -> (out, pre)``: output of the last block and its pre-activation."""

    def __init__(self, blocks: list[ResidualBlock]) -> None:
        super().__init__()
        if not blocks:
            raise ConfigError("structure", "a stage needs at least one block")
        for i, block in enumerate(blocks):
            self.add_module(f"block{i + 1}", block)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = x
        for block in self.children():
            x, pre = block(x)
        return x, pre
