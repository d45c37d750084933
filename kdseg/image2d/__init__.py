"""The 2D teacher of IGNet: a small image segmentation network trained on the synthetic source
images, adapted to the target camera without labels, and its cached per-point features.

Entry points: :func:`train_teacher` (writes ``teacher.pt`` + ``metrics.json``),
:func:`adopt_teacher` (the same files from a user-supplied checkpoint),
:func:`load_teacher`, :func:`cache_features` and :func:`load_point_features`.
See ``docs/teacher2d.md``.
"""

from __future__ import annotations

from .features import (
    PointFeatures,
    cache_features,
    load_point_features,
    point_features,
    read_manifest,
    sample_features,
)
from .model import MODELS, Teacher2D, build_model, load_teacher, save_teacher
from .options import TeacherOptions
from .train import adopt_teacher, evaluate, train_teacher

__all__ = [
    "MODELS",
    "PointFeatures",
    "Teacher2D",
    "TeacherOptions",
    "adopt_teacher",
    "build_model",
    "cache_features",
    "evaluate",
    "load_point_features",
    "load_teacher",
    "point_features",
    "read_manifest",
    "sample_features",
    "save_teacher",
    "train_teacher",
]
