"""Camera rendering: procedural textures, Lambertian shading, sky, and two visual styles.

The *target* style is the camera of the LiDAR dataset; the *source* style (other palette, sun,
texture frequency and sky) renders the synthetic 2D set a 2D teacher is trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdseg import IGNORE_INDEX
from kdseg.datasets.semantickitti_labels import RAW_TO_TRAIN_LUT

from .entities import Scene
from .raycast import Hits

#: base colour (RGB in [0, 1]) per raw id in the target style; vehicles and persons are tinted
TARGET_PALETTE: dict[int, tuple[float, float, float]] = {
    1: (0.5, 0.5, 0.5),
    10: (1.0, 1.0, 1.0),
    11: (0.35, 0.35, 0.38),
    15: (1.0, 1.0, 1.0),
    18: (1.0, 1.0, 1.0),
    20: (1.0, 1.0, 1.0),
    30: (1.0, 1.0, 1.0),
    31: (1.0, 1.0, 1.0),
    32: (1.0, 1.0, 1.0),
    40: (0.33, 0.33, 0.35),
    44: (0.4, 0.38, 0.37),
    48: (0.62, 0.6, 0.57),
    49: (0.52, 0.46, 0.4),
    50: (0.68, 0.57, 0.46),
    51: (0.5, 0.4, 0.3),
    52: (0.45, 0.47, 0.52),
    60: (0.92, 0.92, 0.86),
    70: (0.2, 0.42, 0.15),
    71: (0.36, 0.26, 0.16),
    72: (0.45, 0.55, 0.26),
    80: (0.58, 0.58, 0.62),
    81: (0.15, 0.3, 0.8),
    99: (0.3, 0.32, 0.3),
    252: (1.0, 1.0, 1.0),
    253: (1.0, 1.0, 1.0),
    254: (1.0, 1.0, 1.0),
    255: (1.0, 1.0, 1.0),
    258: (1.0, 1.0, 1.0),
    259: (1.0, 1.0, 1.0),
}


@dataclass(frozen=True)
class Style:
    """Look of a rendering.

    Attributes:
        colour_matrix: ``(3, 3)`` applied to every base colour (hue, saturation, colour cast).
        sun: ``(3,)`` unit direction towards the sun (world); sun, ambient: light strengths.
        texture_scale: multiplies every texture frequency (1/m).
        sky_top, sky_horizon: ``(3,)`` sky colours; fog: metres of the distance haze.
        salt: seeds the texture noise.
    """

    colour_matrix: np.ndarray
    sun: np.ndarray
    sun_strength: float
    ambient: float
    texture_scale: float
    sky_top: np.ndarray
    sky_horizon: np.ndarray
    fog: float
    salt: int


def _hue_matrix(deg: float, saturation: float) -> np.ndarray:
    """RGB matrix rotating the hue by ``deg`` and scaling the saturation."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    grey = np.full((3, 3), 1 / 3)
    k = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]]) / np.sqrt(3)
    rot = np.eye(3) * c + k * s + (1 - c) * grey
    return grey + saturation * (rot - grey)


def _unit(v: tuple[float, float, float]) -> np.ndarray:
    a = np.asarray(v, np.float64)
    return a / np.linalg.norm(a)


TARGET_STYLE = Style(
    np.eye(3),
    _unit((0.4, 0.3, 0.85)),
    0.75,
    0.35,
    1.0,
    np.array([0.45, 0.62, 0.86]),
    np.array([0.78, 0.84, 0.9]),
    220.0,
    11,
)
_SOURCE_COLOURS = np.diag([1.2, 1.0, 0.75]) @ _hue_matrix(28.0, 1.45)
SOURCE_STYLE = Style(
    _SOURCE_COLOURS,
    _unit((-0.6, -0.5, 0.6)),
    1.0,
    0.22,
    2.3,
    np.array([0.25, 0.35, 0.7]),
    np.array([0.95, 0.8, 0.6]),
    120.0,
    97,
)

_PALETTE_LUT = np.full((1 << 16, 3), 0.5)
for _raw, _rgb in TARGET_PALETTE.items():
    _PALETTE_LUT[_raw] = _rgb
_TINTED = np.zeros(1 << 16, dtype=bool)
_TINTED[[10, 15, 18, 20, 30, 31, 32, 252, 253, 254, 255, 258, 259]] = True


def cell_noise(p: np.ndarray, freq: float, salt: int) -> np.ndarray:
    """Value in [0, 1) per point ``(N, 3)`` constant over cubes of side ``1/freq`` m."""
    cells = np.floor(p * freq).astype(np.int64).astype(np.uint64)
    h = cells[:, 0] * np.uint64(0x9E3779B1) ^ cells[:, 1] * np.uint64(0x85EBCA77)
    h ^= cells[:, 2] * np.uint64(0xC2B2AE3D) ^ np.uint64(salt)
    for mult in (0x2C1B3C6D, 0x297A2D39):
        h ^= h >> np.uint64(15)
        h *= np.uint64(mult)
    h ^= h >> np.uint64(13)
    return (h & np.uint64(0xFFFFFF)).astype(np.float64) / float(1 << 24)


def _texture(raw: np.ndarray, p: np.ndarray, normal: np.ndarray, style: Style) -> np.ndarray:
    """Brightness/colour factor ``(N, 3)`` of the procedural texture at world points ``p``."""
    f = style.texture_scale
    n1 = cell_noise(p, 2.0 * f, style.salt)
    n2 = cell_noise(p, 9.0 * f, style.salt + 1)
    tex = np.ones((raw.size, 3))
    scale = 1.0 + 0.08 * (n1 - 0.5)
    flat = np.isin(raw, (40, 44, 49))
    scale = np.where(flat, 1 + 0.12 * (n1 - 0.5) + 0.1 * (n2 - 0.5), scale)
    green = np.isin(raw, (70, 72))
    scale = np.where(green, 1 + 0.35 * (n2 - 0.5) + 0.2 * (n1 - 0.5), scale)
    tile = 0.6 / f
    side = (raw == 48) & ((np.mod(p[:, 0], tile) < 0.05) | (np.mod(p[:, 1], tile) < 0.05))
    scale = np.where(side, 0.78, scale)
    tex *= scale[:, None]
    wall = raw == 50
    if wall.any():
        along = np.where(np.abs(normal[wall, 0]) < np.abs(normal[wall, 1]), p[wall, 0], p[wall, 1])
        period = 3.2 / f
        win = (
            (np.mod(along, period) / period > 0.3)
            & (np.mod(along, period) / period < 0.7)
            & (np.mod(p[wall, 2], 3.0) > 1.0)
            & (np.mod(p[wall, 2], 3.0) < 2.2)
            & (p[wall, 2] > 1.0)
            & (np.abs(normal[wall, 2]) < 0.5)
        )
        tex[np.flatnonzero(wall)[win]] = (0.35, 0.42, 0.55)
    return tex


def render(
    hits: Hits,
    origin: np.ndarray,
    dirs: np.ndarray,
    scene: Scene,
    style: Style,
    size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Image and dense labels of ``H * W`` rays (``dirs (H*W, 3)`` world, row-major).

    Returns:
        ``(H, W, 3)`` uint8 RGB and ``(H, W)`` uint8 train ids (255 for sky and ignored classes).
    """
    width, height = size
    hit = np.isfinite(hits.t)
    ent = np.maximum(hits.entity, 0)
    raw = np.where(hit, scene.entities.raw[ent], 0).astype(np.int64)
    p = origin + dirs * np.where(hit, hits.t, 0.0)[:, None]
    base = _PALETTE_LUT[raw] @ style.colour_matrix.T
    tint = np.where(
        _TINTED[raw][:, None],
        scene.entities.tint[ent] @ style.colour_matrix.T,
        scene.entities.tint[ent],
    )
    light = style.ambient + style.sun_strength * np.clip(hits.normal @ style.sun, 0.0, None)
    colour = base * tint * _texture(raw, p, hits.normal, style) * (hits.shade * light)[:, None]
    up = np.clip(dirs[:, 2] * 4.0, 0.0, 1.0)[:, None]
    sky = style.sky_horizon * (1 - up) + style.sky_top * up
    haze = 1.0 - np.exp(-np.where(hit, hits.t, 0.0) / style.fog)[:, None]
    colour = colour * (1 - haze) + style.sky_horizon * haze
    colour = np.where(hit[:, None], colour, sky)
    rgb = np.clip(np.rint(colour * 255.0), 0, 255).astype(np.uint8).reshape(height, width, 3)
    train = RAW_TO_TRAIN_LUT[raw]
    labels = np.where(hit & (train >= 0), train, IGNORE_INDEX).astype(np.uint8)
    return rgb, labels.reshape(height, width)
