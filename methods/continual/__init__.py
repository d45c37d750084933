"""Continual 2D semantic segmentation methods (family ``"image_continual"``): fine-tuning,
LwF, ILT, MiB, PLOP, MiB+LGKD, PLOP+LGKD and joint training, one file each on the common base
(:mod:`.base`). Importing the package registers them (the method registry imports it)."""

from . import ft, ilt, joint, lgkd, lwf, mib, plop  # noqa: F401  (registration)
from .base import ContinualMethod, ContinualOptions

__all__ = ["ContinualMethod", "ContinualOptions"]
