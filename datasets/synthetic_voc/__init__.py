"""Embedded synthetic data in the Pascal VOC layout, deterministic by seed.

Images of 20 object classes + background whose class sets follow VOC trainaug's class
frequencies and co-occurrence, written as JPEG images, VOC-palette PNG masks with void borders,
ImageSets lists and SSUL-style per-image class lists, so the VOC reader and the continual task
filtering run on them unchanged. See ``docs/continual_data.md``.
"""

from __future__ import annotations

from .config import GENERATOR_VERSION, SyntheticVOCConfig
from .writer import generate, voc_dir

__all__ = ["GENERATOR_VERSION", "SyntheticVOCConfig", "generate", "voc_dir"]
