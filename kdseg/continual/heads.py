"""DeepLabV3 ASPP head and the incrementally grown classifier of MiB / PLOP / LGKD.

:class:`ASPPHead` reproduces ``modules/deeplab.py::DeeplabV3`` of the official code: four
parallel convolutions (1x1 and three dilated 3x3, no bias) concatenated and normalised together,
a 1x1 reduction, plus an image-pooling branch (global mean -> 1x1 conv -> norm -> 1x1 conv)
added *before* the last normalisation. The official code switches the pooling branch to a
32x32 local average at evaluation (``--pooling 32``); with its 512x512 crops the stride-16 map is
32x32, where that equals the global mean, so only the global mean is implemented.

:class:`IncrementalClassifier` is ``IncrementalSegmentationModule.cls``: one 1x1 convolution
(with bias) per step, outputs concatenated in step order (step 0 = background + first classes).
:meth:`IncrementalClassifier.add_step` grows it; ``init="balanced"`` is MiB's
``init_new_classifier``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kdseg.continual.blocks import NormAct, check_activation, conv_gain
from kdseg.errors import ConfigError

ASPP_DILATIONS: dict[int, tuple[int, int, int]] = {16: (6, 12, 18), 8: (12, 24, 32)}
"""Dilations of the three 3x3 ASPP branches per output stride, as in the official code (its
stride-8 setting uses 32, not DeepLab's 36)."""


class ASPPHead(nn.Module):
    """DeepLabV3 head: ``(B, in_channels, h, w) -> (B, out_channels, h, w)`` ("pre-logits",
    after the final norm and activation).

    Args:
        in_channels: width of the backbone output (2048 for ResNet-101).
        out_channels: width of the pre-logits (256 in the official code).
        hidden_channels: width of each branch (256 in the official code).
        dilations: dilations of the three 3x3 branches.
        activation: activation of every norm layer (``"leaky_relu"`` officially).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        hidden_channels: int = 256,
        dilations: Sequence[int] = ASPP_DILATIONS[16],
        activation: str = "leaky_relu",
    ) -> None:
        super().__init__()
        if len(dilations) != 3:
            raise ConfigError("dilations", f"ASPP needs 3 dilations, got {tuple(dilations)}")
        check_activation(activation)
        convs = [nn.Conv2d(in_channels, hidden_channels, 1, bias=False)]
        convs += [
            nn.Conv2d(in_channels, hidden_channels, 3, padding=d, dilation=d, bias=False)
            for d in dilations
        ]
        self.map_convs = nn.ModuleList(convs)
        self.map_bn = NormAct(hidden_channels * 4, activation)
        self.global_pooling_conv = nn.Conv2d(in_channels, hidden_channels, 1, bias=False)
        self.global_pooling_bn = NormAct(hidden_channels, activation)
        self.red_conv = nn.Conv2d(hidden_channels * 4, out_channels, 1, bias=False)
        self.pool_red_conv = nn.Conv2d(hidden_channels, out_channels, 1, bias=False)
        self.red_bn = NormAct(out_channels, activation)
        self.out_channels = out_channels
        gain = conv_gain(activation)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight, gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.red_conv(self.map_bn(torch.cat([conv(x) for conv in self.map_convs], dim=1)))
        pool = x.mean(dim=(2, 3), keepdim=True)
        pool = self.pool_red_conv(self.global_pooling_bn(self.global_pooling_conv(pool)))
        return self.red_bn(out + pool)


CLASSIFIER_INITS: tuple[str, ...] = ("balanced", "random")
"""``balanced``: MiB's background-based initialisation; ``random``: PyTorch's default."""


class IncrementalClassifier(nn.Module):
    """Per-step 1x1 classifiers: ``(B, in_channels, h, w) -> (B, num_classes, h, w)``.

    Args:
        in_channels: width of the pre-logits.
        classes_per_step: output channels of each step so far; step 0 counts background
            (e.g. VOC 15-1 after step 2: ``[16, 1, 1]``).
    """

    def __init__(self, in_channels: int, classes_per_step: Sequence[int]) -> None:
        super().__init__()
        if not classes_per_step or min(classes_per_step) < 1:
            raise ConfigError("classes_per_step", f"need positive counts, got {classes_per_step}")
        self.in_channels = in_channels
        self.cls = nn.ModuleList(nn.Conv2d(in_channels, int(c), 1) for c in classes_per_step)

    @property
    def classes_per_step(self) -> list[int]:
        return [int(conv.out_channels) for conv in self.cls]

    @property
    def num_classes(self) -> int:
        """All output channels (background included)."""
        return sum(self.classes_per_step)

    @property
    def num_old(self) -> int:
        """Channels of the steps before the last one (background included); 0 at step 0."""
        return sum(self.classes_per_step[:-1])

    @property
    def num_new(self) -> int:
        """Channels of the last step."""
        return self.classes_per_step[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([conv(x) for conv in self.cls], dim=1)

    def add_step(self, num_new: int, init: str = "balanced") -> None:
        """Append a classifier of ``num_new`` channels (same device and dtype) and initialise it
        (``init`` in :data:`CLASSIFIER_INITS`)."""
        if num_new < 1:
            raise ConfigError("num_new", f"a step adds at least one class, got {num_new}")
        if init not in CLASSIFIER_INITS:
            raise ConfigError("init", f"must be one of {CLASSIFIER_INITS}, got {init!r}")
        ref = self.cls[0].weight
        self.cls.append(
            nn.Conv2d(self.in_channels, num_new, 1).to(device=ref.device, dtype=ref.dtype)
        )
        if init == "balanced":
            self.init_balanced_()

    @torch.no_grad()
    def init_balanced_(self) -> None:
        """MiB's ``init_new_classifier`` on the last step's classifier (N = its channels):
        every new weight row := the background row ``w_0``; every new bias and the background
        bias := ``b_0 - log(N + 1)``. The background and new logits then share the old
        background probability equally: ``p_new(0) + sum_new p_new(c) = p_old(0)``, and the
        old foreground probabilities do not change."""
        if len(self.cls) < 2:
            raise ConfigError("init", "balanced initialisation needs a step after step 0")
        last = self.cls[-1]
        bg_bias = self.cls[0].bias[0]
        # log(N + 1) in the bias dtype, as the official code computes it (a float32 tensor)
        new_bias = bg_bias - torch.log(bg_bias.new_tensor(float(last.out_channels + 1)))
        last.weight.copy_(self.cls[0].weight[0].expand_as(last.weight))
        last.bias.fill_(float(new_bias))
        self.cls[0].bias[0] = new_bias
