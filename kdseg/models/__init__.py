"""Sparse segmentation models: backbone registry, MinkUNet family, SegNet.

Importing this package registers the built-in backbones (``minkunet18``, ``minkunet_small``,
``minkunet_tiny``).
"""

from kdseg.models import minkunet as _minkunet  # noqa: F401  (registers the backbones)
from kdseg.models.minkunet import BasicBlock, MinkUNet
from kdseg.models.registry import Backbone, build_backbone, list_backbones, register_backbone
from kdseg.models.segnet import SegNet

__all__ = [
    "Backbone",
    "BasicBlock",
    "MinkUNet",
    "SegNet",
    "build_backbone",
    "list_backbones",
    "register_backbone",
]
