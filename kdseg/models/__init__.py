"""Segmentation models: backbone registry, MinkUNet family (sparse voxels), range-view U-Nets,
SegNet.

Importing this package registers the built-in backbones (``minkunet18``, ``minkunet_small``,
``minkunet_tiny``, ``range_unet``, ``range_unet_small``, ``range_unet_tiny``).
"""

from kdseg.models import minkunet as _minkunet  # noqa: F401  (registers the backbones)
from kdseg.models import range_unet as _range_unet  # noqa: F401  (registers the backbones)
from kdseg.models.minkunet import BasicBlock, MinkUNet
from kdseg.models.range_unet import RangeUNet
from kdseg.models.registry import (
    Backbone,
    RangeBackbone,
    backbone_view,
    build_backbone,
    list_backbones,
    register_backbone,
)
from kdseg.models.segnet import SegNet

__all__ = [
    "Backbone",
    "BasicBlock",
    "MinkUNet",
    "RangeBackbone",
    "RangeUNet",
    "SegNet",
    "backbone_view",
    "build_backbone",
    "list_backbones",
    "register_backbone",
]
