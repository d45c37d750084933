"""Colour and texture of the 20 classes, and of the background.

Colours are drawn per instance from a class palette of HSV modes (hue, saturation, value in
[0, 1], with a spread), so classes overlap in colour (cat/dog/horse/cow browns, car/bus/train
paints) and shape and texture have to help. Textures modulate brightness (or mix the secondary
colour in, for spots) from noise fields and the object's local coordinates.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

Mode = tuple[float, float, float, float]  # weight, hue, saturation, value
ANY_HUE = -1.0  # a mode with this hue takes a uniform random hue


@dataclass(frozen=True)
class ClassLook:
    """How instances of a class look.

    Attributes:
        main, second, accent: HSV modes of roles 0, 1 and 3 (role 2 is near-black).
        texture: texture kind (see :func:`texture_gain`).
        indoor: True indoor, False outdoor, None either (context of the background).
        extra_instances: mean number of extra instances of the class in an image.
        scale: range of the object height as a fraction of the image height.
        glass: opacity < 1 lets the background show through (bottles).
    """

    main: tuple[Mode, ...]
    second: tuple[Mode, ...]
    accent: tuple[Mode, ...]
    texture: str
    indoor: bool | None
    extra_instances: float
    scale: tuple[float, float]
    glass: float = 1.0


GREYS: tuple[Mode, ...] = ((1, 0, 0, 0.15), (1, 0, 0.02, 0.55), (1, 0, 0.02, 0.9))
BROWNS: tuple[Mode, ...] = ((2, 0.07, 0.6, 0.45), (1, 0.08, 0.45, 0.7), (1, 0.05, 0.6, 0.28))
PAINT: tuple[Mode, ...] = ((3, ANY_HUE, 0.75, 0.7), (1, 0, 0.02, 0.85), (1, 0, 0.0, 0.15))
METAL: tuple[Mode, ...] = ((1, 0.58, 0.06, 0.7), (1, 0, 0.0, 0.82))
SKIN: tuple[Mode, ...] = ((2, 0.06, 0.4, 0.85), (1, 0.06, 0.55, 0.6), (1, 0.07, 0.6, 0.35))
BRIGHT: tuple[Mode, ...] = ((1, ANY_HUE, 0.7, 0.85),)

LOOKS: dict[int, ClassLook] = {
    1: ClassLook(((3, 0, 0.02, 0.9), (1, 0.58, 0.15, 0.72), (1, 0.0, 0.7, 0.75)),
                 ((1, 0.6, 0.6, 0.5), (1, 0.0, 0.75, 0.7)), METAL, "metal", False, 0.1,
                 (0.36, 0.84)),
    2: ClassLook(PAINT, PAINT, METAL, "smooth", False, 0.4, (0.42, 1.02)),
    3: ClassLook(((2, 0.08, 0.5, 0.45), (1, 0.6, 0.08, 0.55), (1, 0, 0, 0.15), (1, 0, 0, 0.9),
                  (1, 0.58, 0.6, 0.6), (1, 0.15, 0.8, 0.8)),
                 BROWNS, ((1, 0.09, 0.8, 0.85),), "feather", False, 0.5, (0.3, 0.84)),
    4: ClassLook(((2, 0, 0.02, 0.9), (1, 0.0, 0.75, 0.65), (1, 0.6, 0.7, 0.5),
                  (1, 0.08, 0.55, 0.45)), PAINT, ((1, 0, 0.02, 0.92),), "smooth", False, 0.5,
                 (0.3, 0.78)),
    5: ClassLook(((2, 0.3, 0.6, 0.35), (2, 0.07, 0.8, 0.3), (1, 0.55, 0.1, 0.75)),
                 BRIGHT, ((1, 0, 0, 0.95),), "glass", True, 0.8, (0.36, 0.9), glass=0.8),
    6: ClassLook(((2, 0.14, 0.85, 0.85), (1, 0.0, 0.8, 0.7), (1, 0, 0.02, 0.9), (1, 0.6, 0.7, 0.55),
                  (1, 0.33, 0.6, 0.5)), PAINT, METAL, "metal", False, 0.15, (0.54, 1.08)),
    7: ClassLook(PAINT + METAL, PAINT, METAL, "metal", False, 0.5, (0.36, 0.78)),
    8: ClassLook(((2, 0.07, 0.6, 0.7), (1, 0.6, 0.05, 0.5), (1, 0, 0, 0.12), (1, 0, 0, 0.9),
                  (1, 0.08, 0.45, 0.45)), BROWNS, SKIN, "stripes", True, 0.15, (0.48, 1.02)),
    9: ClassLook((*BROWNS, (1, 0, 0, 0.12), (1, ANY_HUE, 0.7, 0.7)), BRIGHT, BROWNS, "wood",
                 True, 0.7, (0.42, 0.96)),
    10: ClassLook(((2, 0, 0, 0.92), (1, 0.06, 0.6, 0.4)), ((2, 0, 0, 0.12), (1, 0, 0, 0.92)),
                  ((1, 0, 0, 0.85),), "spots", False, 0.7, (0.42, 0.96)),
    11: ClassLook((*BROWNS, (1, 0, 0, 0.9)), ((1, 0.05, 0.6, 0.25),),
                  ((2, 0, 0, 0.95), (1, 0.0, 0.7, 0.7)), "wood", True, 0.0, (0.42, 0.9)),
    12: ClassLook(((2, 0.1, 0.55, 0.75), (2, 0.07, 0.6, 0.4), (1, 0, 0, 0.12), (1, 0, 0.05, 0.9),
                   (1, 0.6, 0.05, 0.5)), BROWNS, SKIN, "fur", None, 0.2, (0.48, 1.02)),
    13: ClassLook(((2, 0.05, 0.65, 0.45), (2, 0.04, 0.6, 0.3), (1, 0, 0, 0.8), (1, 0, 0, 0.12)),
                  GREYS, SKIN, "fur", False, 0.3, (0.54, 1.08)),
    14: ClassLook(((2, 0, 0.85, 0.7), (1, 0, 0, 0.12), (1, 0.6, 0.7, 0.5), (1, 0.08, 0.85, 0.85)),
                  PAINT, METAL, "metal", False, 0.3, (0.48, 1.02)),
    15: ClassLook((*PAINT, (1, 0.6, 0.5, 0.35)), ((2, 0.6, 0.5, 0.35), (1, 0, 0, 0.15),
                  (1, 0.1, 0.35, 0.6), (1, 0, 0, 0.5)), SKIN, "cloth", None, 0.8, (0.6, 1.14)),
    16: ClassLook(((3, 0.28, 0.65, 0.45), (1, 0.22, 0.6, 0.55), (1, 0.33, 0.7, 0.3)),
                  ((2, 0.05, 0.65, 0.6), (1, 0, 0, 0.9), (1, 0, 0, 0.15)), BRIGHT, "leafy",
                  True, 0.3, (0.42, 0.9)),
    17: ClassLook(((3, 0.12, 0.12, 0.85), (1, 0.1, 0.1, 0.6)), GREYS, GREYS, "wool", False, 1.0,
                  (0.36, 0.84)),
    18: ClassLook(((1, 0, 0.02, 0.55), (1, 0.1, 0.25, 0.7), (1, 0.07, 0.6, 0.35),
                   (1, 0.0, 0.6, 0.45), (1, 0.6, 0.4, 0.45), (1, 0.3, 0.35, 0.45)), BROWNS, BRIGHT,
                  "fabric", True, 0.15, (0.42, 0.9)),
    19: ClassLook(PAINT, PAINT, ((1, 0.55, 0.2, 0.3),), "metal", False, 0.0, (0.54, 1.02)),
    20: ClassLook(GREYS, GREYS, BRIGHT, "screen", True, 0.2, (0.36, 0.84)),
}  # fmt: skip
"""VOC label id -> appearance."""


def sample_colour(rng: np.random.Generator, modes: tuple[Mode, ...]) -> np.ndarray:
    """An RGB colour in [0, 1] drawn from HSV ``modes`` (weights, then per-instance jitter)."""
    w = np.array([m[0] for m in modes], dtype=np.float64)
    _, h, s, v = modes[int(rng.choice(len(modes), p=w / w.sum()))]
    h = rng.random() if h == ANY_HUE else (h + rng.normal(0, 0.02)) % 1.0
    s = float(np.clip(s + rng.normal(0, 0.08), 0, 1))
    v = float(np.clip(v + rng.normal(0, 0.08), 0.03, 1))
    return np.array(colorsys.hsv_to_rgb(h, s, v))


def role_colours(rng: np.random.Generator, look: ClassLook) -> np.ndarray:
    """``(4, 3)`` RGB in [0, 1] of roles main, secondary, dark, accent for one instance."""
    dark = np.clip(sample_colour(rng, ((1, 0, 0, 0.12),)) * rng.uniform(0.6, 1.2), 0, 1)
    return np.stack([sample_colour(rng, look.main), sample_colour(rng, look.second), dark,
                     sample_colour(rng, look.accent)])  # fmt: skip


def texture_gain(
    kind: str,
    U: np.ndarray,
    V: np.ndarray,
    fields: tuple[np.ndarray, np.ndarray, np.ndarray],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Brightness gain ``(h, w)`` (about 1) and an optional mask where the secondary colour
    replaces the main one. ``fields`` = fine, mid, coarse zero-mean noise at the pixels."""
    fine, mid, coarse = fields
    f, phase, theta = rng.uniform(4, 9), rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi)
    along = U * np.cos(theta) + V * np.sin(theta)
    mix = None
    if kind == "metal":
        v0 = rng.uniform(-0.6, 0.2)
        gain = 1 + 0.05 * coarse + 0.3 * np.exp(-(((V - v0) / 0.12) ** 2))
    elif kind == "stripes":
        gain = 1 - 0.3 * (np.sin(2 * np.pi * f * along + phase + 1.5 * mid) > 0.3) + 0.06 * fine
    elif kind == "spots":
        mix = coarse + 0.4 * mid > rng.uniform(0.0, 0.6)
        gain = 1 + 0.05 * fine
    elif kind == "fur":
        gain = 1 + 0.16 * fine + 0.08 * mid
    elif kind == "wool":
        gain = 1 + 0.22 * np.abs(fine) - 0.1 + 0.05 * mid
    elif kind == "wood":
        gain = 1 + 0.14 * np.sin(2 * np.pi * f * (along + 0.08 * mid)) + 0.05 * fine
    elif kind == "fabric":
        gain = 1 + 0.07 * np.sign(np.sin(3 * f * U) * np.sin(3 * f * V)) + 0.05 * fine
    elif kind == "leafy":
        gain = 1 + 0.3 * mid + 0.1 * fine
    elif kind == "feather":
        gain = 1 + 0.14 * np.sin(2 * np.pi * f * U + 2 * mid) + 0.08 * fine
    elif kind == "screen":
        gain = 0.7 + 0.25 * (U - U.min()) / max(float(np.ptp(U)), 1e-6) + 0.15 * coarse
    elif kind in ("cloth", "smooth", "glass"):
        gain = 1 + 0.1 * coarse + 0.03 * fine
    else:
        raise ValueError(f"unknown texture {kind!r}")
    return gain, mix


INDOOR_WALLS: tuple[Mode, ...] = ((2, 0.1, 0.15, 0.85), (1, 0, 0, 0.9), (1, 0.55, 0.15, 0.75),
                                  (1, 0.08, 0.35, 0.55))  # fmt: skip
INDOOR_FLOORS: tuple[Mode, ...] = (*BROWNS, (1, 0, 0.02, 0.4), (1, 0.0, 0.4, 0.35))
SKIES: tuple[Mode, ...] = ((3, 0.58, 0.45, 0.85), (1, 0.6, 0.05, 0.85), (1, 0.58, 0.2, 0.65))
GROUNDS: tuple[Mode, ...] = ((3, 0.27, 0.55, 0.45), (1, 0.1, 0.4, 0.45), (1, 0, 0, 0.45),
                             (1, 0.55, 0.5, 0.4))  # fmt: skip
CLUTTER: tuple[Mode, ...] = ((4, 0.1, 0.2, 0.5), (2, 0.3, 0.4, 0.4), (2, 0, 0, 0.35),
                             (2, 0, 0, 0.75), (1, ANY_HUE, 0.6, 0.6))  # fmt: skip
