"""Continual semantic segmentation in 2D: networks and losses of FT, LwF, ILT, MiB, PLOP and
LGKD (issue 14, items 4-5), as pure modules and functions with the official code's semantics.

Importing this package registers the image backbones ``deeplabv3_resnet101``,
``deeplabv3_resnet50`` and ``cseg_tiny`` in :mod:`kdseg.models.registry` (view ``"image"``).
See ``docs/continual_methods.md``.
"""

from kdseg.continual.heads import ASPPHead, IncrementalClassifier
from kdseg.continual.networks import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BackboneFeatures,
    ContinualSegmenter,
    DeepLabV3Backbone,
    ImageBackbone,
    SegmentationOutput,
    TinySegBackbone,
    deeplabv3,
    frozen_copy,
)
from kdseg.continual.resnet import ResNetBody, load_backbone_weights, resnet_body

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ASPPHead",
    "BackboneFeatures",
    "ContinualSegmenter",
    "DeepLabV3Backbone",
    "ImageBackbone",
    "IncrementalClassifier",
    "ResNetBody",
    "SegmentationOutput",
    "TinySegBackbone",
    "deeplabv3",
    "frozen_copy",
    "load_backbone_weights",
    "resnet_body",
]
