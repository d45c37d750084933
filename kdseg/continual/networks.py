"""Continual-segmentation networks: image backbones (DeepLabV3 for the paper scale, a small
encoder-decoder for the CPU default), the segmenter with its per-step classifier, and their
registration in :mod:`kdseg.models.registry` (view ``"image"``).

Every image backbone maps a normalised RGB batch ``(B, 3, H, W)`` (float; the official code
normalises with the ImageNet mean/std, :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD`) to
:class:`BackboneFeatures`: the pre-logits at the backbone's output stride, the last stage's
output (ILT's "body") and the four stage outputs PLOP distils. :class:`ContinualSegmenter`
adds the :class:`~kdseg.continual.heads.IncrementalClassifier` and the bilinear upsampling and
returns a :class:`SegmentationOutput`, whose :meth:`SegmentationOutput.pod_features` is PLOP's
layer list (4 stages, pre-logits, stride-os logits).

Registered backbones (``build_backbone(name, **kwargs)``):

* ``deeplabv3_resnet101`` / ``deeplabv3_resnet50``: ResNet + ASPP 256, output stride 16
  (or 8), leaky-ReLU norms as the official in-place ABN; ``pretrained``: path to weights
  (:func:`~kdseg.continual.resnet.load_backbone_weights`), default random initialisation.
* ``cseg_tiny``: the CPU network (:class:`TinySegBackbone`).
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from kdseg.continual.blocks import NormAct, ResidualBlock, Stage, check_activation
from kdseg.continual.heads import ASPP_DILATIONS, ASPPHead, IncrementalClassifier
from kdseg.continual.resnet import ResNetBody, load_backbone_weights, resnet_body
from kdseg.errors import ConfigError
from kdseg.models.registry import register_backbone

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class BackboneFeatures(NamedTuple):
    """Output of an :class:`ImageBackbone` for a ``(B, 3, H, W)`` batch.

    Attributes:
        pre_logits: ``(B, out_channels, H/os, W/os)``, the classifier's input.
        body: ``(B, C_body, H/s, W/s)``, the encoder output after its activation (ILT's feature).
        stages: four ``(B, C_i, H/s_i, W/s_i)`` pre-activation stage outputs (PLOP's POD layers).
    """

    pre_logits: torch.Tensor
    body: torch.Tensor
    stages: tuple[torch.Tensor, ...]


class ImageBackbone(nn.Module, abc.ABC):
    """Image-view backbone base: ``forward((B, in_channels, H, W)) -> BackboneFeatures``."""

    view: ClassVar[str] = "image"
    in_channels: int
    out_channels: int
    output_stride: int
    """``H / h`` of the pre-logits (input sizes should be multiples of it)."""
    stage_channels: tuple[int, ...]
    """Channels of the four ``stages`` maps."""

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> BackboneFeatures:
        """Pre-logits, body and stage features of ``x``."""


class DeepLabV3Backbone(ImageBackbone):
    """ResNet body + ASPP head (MiB/PLOP/LGKD's ``make_model`` without the classifier)."""

    def __init__(self, body: ResNetBody, head: ASPPHead) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.in_channels = body.in_channels
        self.out_channels = head.out_channels
        self.output_stride = body.output_stride
        self.stage_channels = body.stage_channels

    def forward(self, x: torch.Tensor) -> BackboneFeatures:
        out, stages = self.body(x)
        return BackboneFeatures(self.head(out), out, tuple(stages))


def deeplabv3(
    resnet: str = "resnet101",
    output_stride: int = 16,
    head_channels: int = 256,
    activation: str = "leaky_relu",
    pretrained: str | Path | None = None,
    in_channels: int = 3,
) -> DeepLabV3Backbone:
    """DeepLabV3 as in MiB/PLOP/LGKD: ``resnet`` body (``resnet50/101/152``), ASPP with
    ``head_channels`` (256) in every branch and at the output. ``pretrained``: optional weight
    file for the ResNet (official in-place-ABN checkpoint or torchvision state dict)."""
    body = resnet_body(
        resnet, output_stride=output_stride, activation=activation, in_channels=in_channels
    )
    if pretrained is not None:
        load_backbone_weights(body, pretrained)
    head = ASPPHead(
        body.out_channels,
        head_channels,
        head_channels,
        ASPP_DILATIONS[output_stride],
        activation,
    )
    return DeepLabV3Backbone(body, head)


class TinySegBackbone(ImageBackbone):
    """Small DeepLab-shaped encoder-decoder for the 2-core CPU default (64x64 images).

    ``mod1``: 3x3 conv stride 2 + 3x3 max-pool stride 2 (stride 4); ``mod2``..``mod5``: one
    basic residual block each, ``mod3`` with stride 2 and ``mod4`` / ``mod5`` dilated 2 / 4 at
    stride 8 (the ResNet pattern); an ASPP head at stride 8 (``head_dilations``); with
    ``decoder`` (default) the ASPP output is upsampled to stride 4, concatenated with a 1x1
    projection of ``mod2`` and fused by a 3x3 conv, so the pre-logits (and PLOP's small logits)
    are at stride 4. Same feature taps as DeepLabV3: four pre-activation stage outputs, the
    body (``mod5`` after activation) and the pre-logits.

    Args:
        widths: channels of mod2..mod5 (four positive widths)
        head_channels: ASPP output width
        head_hidden: ASPP branch width
        head_dilations: dilations of the ASPP's 3x3 branches (at stride 8)
        decoder: fuse the ASPP output with mod2 at stride 4 (False: output at stride 8)
        skip_channels: width of the 1x1 projection of mod2 in the decoder
        activation: 'leaky_relu' or 'relu'
        in_channels: input image channels (RGB = 3)
    """

    def __init__(
        self,
        widths: Sequence[int] = (16, 24, 48, 64),
        head_channels: int = 64,
        head_hidden: int = 32,
        head_dilations: Sequence[int] = (2, 3, 4),
        decoder: bool = True,
        skip_channels: int = 16,
        activation: str = "leaky_relu",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(widths) != 4 or min(widths) < 1:
            raise ConfigError("widths", f"need 4 positive stage widths, got {tuple(widths)}")
        check_activation(activation)
        w = list(widths)
        self.mod1 = nn.Sequential()
        self.mod1.add_module("conv1", nn.Conv2d(in_channels, w[0], 3, 2, 1, bias=False))
        self.mod1.add_module("bn1", NormAct(w[0], activation))
        self.mod1.add_module("pool1", nn.MaxPool2d(3, stride=2, padding=1))
        specs = [(w[0], w[0], 1, 1), (w[0], w[1], 2, 1), (w[1], w[2], 1, 2), (w[2], w[3], 1, 4)]
        for i, (cin, cout, stride, dil) in enumerate(specs):
            block = ResidualBlock(cin, (cout, cout), stride, dil, activation)
            self.add_module(f"mod{i + 2}", Stage([block]))
        self.head = ASPPHead(w[3], head_channels, head_hidden, tuple(head_dilations), activation)
        self.decoder = decoder
        if decoder:
            self.skip = nn.Sequential(
                nn.Conv2d(w[0], skip_channels, 1, bias=False), NormAct(skip_channels, activation)
            )
            self.fuse = nn.Sequential(
                nn.Conv2d(head_channels + skip_channels, head_channels, 3, padding=1, bias=False),
                NormAct(head_channels, activation),
            )
        self.in_channels = in_channels
        self.out_channels = head_channels
        self.output_stride = 4 if decoder else 8
        self.stage_channels = (w[0], w[1], w[2], w[3])

    def forward(self, x: torch.Tensor) -> BackboneFeatures:
        x = self.mod1(x)
        stages = []
        low = x
        for i, name in enumerate(("mod2", "mod3", "mod4", "mod5")):
            x, pre = getattr(self, name)(x)
            stages.append(pre)
            if i == 0:
                low = x
        out = self.head(x)
        if self.decoder:
            out = F.interpolate(out, size=low.shape[-2:], mode="bilinear", align_corners=False)
            out = self.fuse(torch.cat([out, self.skip(low)], dim=1))
        return BackboneFeatures(out, x, tuple(stages))


@dataclass
class SegmentationOutput:
    """Output of :class:`ContinualSegmenter` for a ``(B, 3, H, W)`` batch.

    Attributes:
        logits: ``(B, C, H, W)``, bilinear upsampling (``align_corners=False``) of
            ``logits_small``; ``C`` = every class seen so far, background first.
        logits_small: ``(B, C, H/os, W/os)`` (PLOP/LGKD's ``sem_logits_small``).
        pre_logits: ``(B, D, H/os, W/os)``.
        body: encoder output after activation (ILT's ``features['body']``).
        stages: four pre-activation stage outputs (PLOP's ``attentions`` without pre-logits).
    """

    logits: torch.Tensor
    logits_small: torch.Tensor
    pre_logits: torch.Tensor
    body: torch.Tensor
    stages: tuple[torch.Tensor, ...]

    def pod_features(self) -> list[torch.Tensor]:
        """PLOP's POD layer list: the 4 stage outputs, the pre-logits, the small logits (6
        maps; the last one is the logits layer, :func:`kdseg.continual.pod.pod_loss`)."""
        return [*self.stages, self.pre_logits, self.logits_small]


class ContinualSegmenter(nn.Module):
    """Backbone + per-step classifier + upsampling (``IncrementalSegmentationModule``).

    Args:
        backbone: an :class:`ImageBackbone`.
        classes_per_step: channels per step so far, step 0 with background (``[16]`` at VOC
            15-5 step 0; ``[16, 5]`` at step 1).
    """

    def __init__(self, backbone: ImageBackbone, classes_per_step: Sequence[int]) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = IncrementalClassifier(backbone.out_channels, classes_per_step)

    @property
    def num_classes(self) -> int:
        return self.classifier.num_classes

    @property
    def num_old(self) -> int:
        return self.classifier.num_old

    @property
    def num_new(self) -> int:
        return self.classifier.num_new

    def grow(self, num_new: int, init: str = "balanced") -> None:
        """Add a step of ``num_new`` classes (``init``: ``"balanced"`` = MiB, or ``"random"``)."""
        self.classifier.add_step(num_new, init)

    def forward(self, x: torch.Tensor) -> SegmentationOutput:
        feats = self.backbone(x)
        small = self.classifier(feats.pre_logits)
        logits = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return SegmentationOutput(logits, small, feats.pre_logits, feats.body, feats.stages)


def frozen_copy(model: ContinualSegmenter) -> ContinualSegmenter:
    """A deep copy in eval mode with ``requires_grad=False`` everywhere: the previous step's
    model as the official code uses it (``model_old.eval()``, BN on running statistics)."""
    old = copy.deepcopy(model)
    old.eval()
    for p in old.parameters():
        p.requires_grad_(False)
    return old


def _deeplabv3_factory(resnet: str):
    def factory(
        output_stride: int = 16,
        head_channels: int = 256,
        activation: str = "leaky_relu",
        pretrained: str | Path | None = None,
        in_channels: int = 3,
    ) -> DeepLabV3Backbone:
        return deeplabv3(resnet, output_stride, head_channels, activation, pretrained, in_channels)

    factory.__doc__ = f"""DeepLabV3 with a {resnet} body, as in MiB/PLOP/LGKD.

    Args:
        output_stride: 16 or 8 (dilated last stages)
        head_channels: ASPP width of every branch and of the output
        activation: 'leaky_relu' (in-place ABN of the official code) or 'relu'
        pretrained: optional weight file for the ResNet (official in-place-ABN checkpoint or
            torchvision state dict)
        in_channels: input image channels (RGB = 3)
    """
    return factory


register_backbone("deeplabv3_resnet101", view="image")(_deeplabv3_factory("resnet101"))
register_backbone("deeplabv3_resnet50", view="image")(_deeplabv3_factory("resnet50"))


@register_backbone("cseg_tiny", view="image", options=TinySegBackbone)
def _cseg_tiny(**kwargs: object) -> TinySegBackbone:
    return TinySegBackbone(**kwargs)  # type: ignore[arg-type]
