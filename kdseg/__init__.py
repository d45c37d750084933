"""kdseg: knowledge distillation for label-efficient semantic segmentation.

Conventions used everywhere in the code base:

* Train ids are ``0..C-1``; the single ignore index is :data:`IGNORE_INDEX` (255).
* Points are ``(N, 3)`` or ``(N, 4)`` float32 arrays in metres, LiDAR frame
  (x forward, y left, z up) unless a docstring says otherwise.
* Every file the project writes is written atomically (:mod:`kdseg.io`).
"""

from __future__ import annotations

IGNORE_INDEX: int = 255
"""The one ignore label of the code base (fits in uint8 label images)."""

__version__ = "0.1.0"
