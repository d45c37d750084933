"""One synthetic VOC image: class sets drawn from VOC's co-occurrence, background with clutter,
objects in depth order (occlusion, truncation at the image border), VOC-style void borders.

Rendering happens on a canvas ``supersample`` times larger than the image; the image is the
block mean (anti-aliased edges), the mask the label at each block's centre. Label ids are VOC's:
0 background (clutter and occluders included), 1..20 objects, 255 void.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .appearance import (
    CLUTTER,
    GROUNDS,
    INDOOR_FLOORS,
    INDOOR_WALLS,
    LOOKS,
    SKIES,
    role_colours,
    sample_colour,
    texture_gain,
)
from .class_sets import VOC_TRAINAUG_CLASS_SETS
from .config import SyntheticVOCConfig
from .raster import Part, local_frame, rasterise
from .templates import TEMPLATES

VOID = 255
FLYING = {1, 3}  # aeroplane, bird: placed anywhere, rotated more
BEHIND = {11: 0.3, 18: 0.1}  # tables and sofas are drawn before (behind) what stands in front
MAX_ATTEMPTS = 6


def draw_class_sets(n: int, min_per_class: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """``n`` class sets drawn from VOC trainaug's empirical distribution of class sets; first
    ``min_per_class`` sets containing each class (drawn among those sets), then shuffled."""
    sets = [s for s, _ in VOC_TRAINAUG_CLASS_SETS]
    weights = np.array([c for _, c in VOC_TRAINAUG_CLASS_SETS], dtype=np.float64)
    chosen: list[tuple[int, ...]] = []
    for c in range(1, 21):
        idx = np.array([k for k, s in enumerate(sets) if c in s])
        w = weights[idx] / weights[idx].sum()
        chosen += [sets[int(k)] for k in rng.choice(idx, size=min_per_class, p=w)]
    rest = rng.choice(len(sets), size=n - len(chosen), p=weights / weights.sum())
    chosen += [sets[int(k)] for k in rest]
    return [chosen[int(k)] for k in rng.permutation(len(chosen))]


def _fields(rng: np.random.Generator, shape: tuple[int, int], ss: int) -> tuple[np.ndarray, ...]:
    """Fine, mid and coarse zero-mean, unit-std noise fields of the canvas."""
    out = []
    for sigma in (0.5 * ss, 2.0 * ss, 6.0 * ss):
        f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
        out.append(f / max(float(f.std()), 1e-9))
    return tuple(out)


@dataclass
class _Canvas:
    rgb: np.ndarray  # (Hs, Ws, 3) float in [0, 1]
    inst: np.ndarray  # (Hs, Ws) int16, 0 = background
    fields: tuple[np.ndarray, ...]

    def paint(
        self,
        rng: np.random.Generator,
        parts: list[Part],
        half_w: float,
        centre: tuple[float, float],
        hh: float,
        angle: float,
        mirror: bool,
        colours: np.ndarray,
        texture: str,
        inst_id: int,
        alpha: float = 1.0,
    ) -> None:
        """Paint one object (or clutter shape, ``inst_id`` 0) into the canvas.

        ``half_w``: the parts' half-width in local units; ``centre`` ``(x, y)`` and ``hh``
        (pixels per local unit) in canvas pixels; ``angle`` radians; ``colours`` ``(4, 3)`` RGB
        in [0, 1] per role; ``alpha`` opacity.
        """
        hs, ws = self.inst.shape
        radius = hh * float(np.hypot(half_w, 1.0)) * 1.1 + 2
        r0, r1 = max(int(centre[1] - radius), 0), min(int(centre[1] + radius) + 1, hs)
        c0, c1 = max(int(centre[0] - radius), 0), min(int(centre[0] + radius) + 1, ws)
        if r0 >= r1 or c0 >= c1:
            return
        U, V = local_frame((r1 - r0, c1 - c0), (r0, c0), centre, hh, angle, mirror)
        win = tuple(f[r0:r1, c0:c1] for f in self.fields)
        roles = rasterise(parts, U, V, win[0])
        inside = roles >= 0
        if not inside.any():
            return
        gain, mix = texture_gain(texture, U, V, win, rng)
        light = rng.uniform(0, 2 * np.pi)
        gain = gain * (1 + 0.15 * (U * np.cos(light) + V * np.sin(light)) / max(half_w, 1.0))
        if mix is not None:
            roles = np.where((roles == 0) & mix, 1, roles)
        col = colours[np.clip(roles, 0, 3)] * gain[..., None]
        region = self.rgb[r0:r1, c0:c1]
        region[inside] = alpha * col[inside] + (1 - alpha) * region[inside]
        self.inst[r0:r1, c0:c1][inside] = inst_id


def _background(rng: np.random.Generator, cv: _Canvas, indoor: bool, n_clutter: int) -> None:
    hs, ws = cv.inst.shape
    rows = np.linspace(0, 1, hs)[:, None, None]
    horizon = rng.uniform(0.55, 0.85) if indoor else rng.uniform(0.3, 0.7)
    top = sample_colour(rng, INDOOR_WALLS if indoor else SKIES)
    low = sample_colour(rng, INDOOR_FLOORS if indoor else GROUNDS)
    upper = top * (1 + (0.05 if indoor else 0.25) * rows / max(horizon, 1e-3))
    cv.rgb[:] = np.where(rows < horizon, upper, low * (0.8 + 0.35 * rows))
    cv.rgb *= (1 + 0.05 * cv.fields[2] + 0.04 * cv.fields[1])[..., None]
    kinds = ("box", "ell", "cap", "poly")
    for _ in range(n_clutter):
        kind = kinds[int(rng.integers(len(kinds)))]
        a = rng.uniform(0.3, 2.5)
        part: Part
        if kind == "box":
            part = ("box", (-a, -1.0, a, 1.0, rng.uniform(0, 0.3)), 0)
        elif kind == "ell":
            part = ("ell", (0.0, 0.0, a, 1.0, rng.uniform(0, 0.4)), 0)
        elif kind == "cap":
            part = ("cap", (-a, -1.0, a, 1.0, rng.uniform(0.05, 0.25)), 0)
        else:
            part = ("poly", tuple(rng.uniform(-1, 1, 6) * [a, 1, a, 1, a, 1]), 0)
        colours = np.stack([sample_colour(rng, CLUTTER)] * 4)
        hh = rng.uniform(0.05, 0.3) * hs
        centre = (rng.uniform(0, ws), rng.uniform(0.1, 1.0) * hs)
        texture = ("smooth", "fur", "wood", "fabric", "leafy")[int(rng.integers(5))]
        cv.paint(rng, [part], a, centre, hh, rng.normal(0, 0.5), False, colours, texture, 0)


def _instances(rng: np.random.Generator, classes: tuple[int, ...], max_objects: int) -> list[int]:
    """Class of every instance: one per class plus Poisson extras, at most ``max_objects``."""
    extra = [c for c in classes for _ in range(int(rng.poisson(LOOKS[c].extra_instances)))]
    rng.shuffle(extra)
    return list(classes) + extra[: max(max_objects - len(classes), 0)]


Placed = tuple[float, int, float, list[Part], tuple[float, float], float, float, bool, bool]
"""depth, class, half-width, parts, centre (x, y), pixels per unit, angle, mirror, difficult"""


def _layout(
    rng: np.random.Generator, cfg: SyntheticVOCConfig, classes: tuple[int, ...], hs: int, ws: int
) -> list[Placed]:
    """Instances with geometry on an ``(hs, ws)`` canvas, sorted back to front."""
    insts = _instances(rng, classes, cfg.max_objects)
    crowd = len(insts) ** -0.2
    placed: list[Placed] = []
    for k, c in enumerate(insts):
        look = LOOKS[c]
        half_w, parts = TEMPLATES[c](rng)
        hh = rng.uniform(*look.scale) * crowd * hs / 2
        hh = min(hh, 0.8 * ws / half_w)  # long objects may leave the image, not by far
        flyer = c in FLYING
        cx = rng.uniform(0.0, 1.0) * ws
        bottom = rng.uniform(0.15, 0.95) * hs + hh if flyer else rng.uniform(0.55, 1.15) * hs
        cy = float(np.clip(bottom - hh, -0.1 * hs, 1.1 * hs))
        angle = rng.normal(0, 0.25 if flyer else 0.06)
        difficult = k >= len(classes) and rng.random() < cfg.difficult_prob
        depth = cy + hh - BEHIND.get(c, 0.0) * hs
        placed.append((depth, c, half_w, parts, (cx, cy), hh, angle, bool(rng.random() < 0.5),
                       difficult))  # fmt: skip
    placed.sort(key=lambda p: p[0])
    return placed


@dataclass(frozen=True)
class RenderedImage:
    """A rendered sample: ``image (H, W, 3)`` uint8, ``mask (H, W)`` uint8 (VOC ids, 255 void),
    ``instances`` drawn, layout ``attempts`` used (> 1: a class was hidden and redrawn)."""

    image: np.ndarray
    mask: np.ndarray
    instances: int
    attempts: int


def _render_once(
    rng: np.random.Generator, cfg: SyntheticVOCConfig, classes: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, int]:
    """One layout: image ``(H, W, 3)`` uint8, mask ``(H, W)`` uint8, number of instances."""
    ss = cfg.supersample
    hs, ws = cfg.height * ss, cfg.width * ss
    cv = _Canvas(np.zeros((hs, ws, 3)), np.zeros((hs, ws), np.int16), _fields(rng, (hs, ws), ss))
    indoor_vote = [LOOKS[c].indoor for c in classes if LOOKS[c].indoor is not None]
    p_indoor = 0.5 if not indoor_vote else (0.85 if any(indoor_vote) else 0.15)
    _background(
        rng, cv, bool(rng.random() < p_indoor), int(rng.integers(*cfg.clutter, endpoint=True))
    )
    placed = _layout(rng, cfg, classes, hs, ws)
    label_of = np.zeros(len(placed) + 1, np.uint8)
    for k, (_, c, half_w, parts, centre, hh, angle, mirror, difficult) in enumerate(placed, 1):
        look = LOOKS[c]
        colours = role_colours(rng, look)
        cv.paint(
            rng, parts, half_w, centre, hh, angle, mirror, colours, look.texture, k, look.glass
        )
        label_of[k] = VOID if difficult else c
    if rng.random() < cfg.occluder_prob:  # a pole, bar or branch in front (background)
        t = rng.uniform(0.03, 0.12)
        part: Part = ("cap", (0.0, -1.2, rng.uniform(-0.6, 0.6), 1.2, t), 0)
        colours = np.stack([sample_colour(rng, CLUTTER)] * 4)
        centre = (rng.uniform(0, ws), rng.uniform(0.3, 0.7) * hs)
        cv.paint(rng, [part], 0.7, centre, hs / 2, rng.normal(0, 0.6), False, colours, "wood", 0)
    gain = rng.uniform(0.8, 1.15) * (1 + rng.normal(0, 0.03, 3))
    small = (cv.rgb * gain).reshape(cfg.height, ss, cfg.width, ss, 3).mean(axis=(1, 3))
    small += rng.normal(0, cfg.noise_std / 255.0, small.shape)
    image = np.clip(np.rint(small * 255), 0, 255).astype(np.uint8)
    inst = cv.inst[ss // 2 :: ss, ss // 2 :: ss]
    mask = label_of[inst]
    if cfg.void_border_px > 0:
        size = cfg.void_border_px + 1
        edge = ndimage.maximum_filter(inst, size=size) != ndimage.minimum_filter(inst, size=size)
        mask[edge] = VOID
    return image, mask, len(placed)


def render_image(
    rng: np.random.Generator, cfg: SyntheticVOCConfig, classes: tuple[int, ...]
) -> RenderedImage:
    """Render an image containing ``classes`` (VOC ids 1..20). The layout is redrawn (at most
    :data:`MAX_ATTEMPTS` times) until each class keeps ``cfg.min_visible_px`` labelled pixels;
    if that never happens the last attempt is kept and its mask says what is visible."""
    attempts = 0
    while True:
        attempts += 1
        image, mask, n = _render_once(rng, cfg, classes)
        counts = np.bincount(mask.ravel(), minlength=256)
        if attempts == MAX_ATTEMPTS or all(counts[c] >= cfg.min_visible_px for c in classes):
            return RenderedImage(image, mask, n, attempts)
