"""Embedded synthetic street dataset (SemanticKITTI layout), deterministic by seed.

A procedural street scene is ray cast by a spinning multi-beam LiDAR and a front camera; the
result is written in the SemanticKITTI / ScribbleKITTI / KITTI layout (plus dense 2D labels and
a differently styled source image set), so the real-data readers read it unchanged.
"""

from __future__ import annotations

from .config import GENERATOR_VERSION, StreetConfig
from .writer import generate, generate_sequence

__all__ = ["GENERATOR_VERSION", "StreetConfig", "generate", "generate_sequence"]
