"""Rasterisation of object parts in an object's local frame.

An object's local coordinates are isotropic: ``v`` runs from -1 (top) to 1 (bottom) over the
object's height, ``u`` from ``-A`` to ``A`` (``A`` = half-width / half-height) left to right, so
circles stay round. A part is ``(kind, geometry, role)``:

* ``("ell", (cu, cv, ru, rv, rough), role)``: ellipse; ``rough`` > 0 frays its outline with the
  fine noise field (wool, foliage);
* ``("box", (u0, v0, u1, v1, r), role)``: axis-aligned box with corner radius ``r``;
* ``("cap", (u0, v0, u1, v1, t), role)``: capsule of half-thickness ``t`` around a segment;
* ``("poly", (u0, v0, u1, v1, ...), role)``: convex polygon;
* ``("ring", (cu, cv, r_out, r_in), role)``: annulus.

``role`` picks the colour of the part: 0 main, 1 secondary, 2 dark, 3 accent (see
:mod:`.appearance`). Later parts paint over earlier ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Part = tuple[str, tuple[float, ...], int]
ROLES: int = 4


def _ellipse(U: np.ndarray, V: np.ndarray, g: Sequence[float], fine: np.ndarray) -> np.ndarray:
    cu, cv, ru, rv, rough = g
    d = ((U - cu) / ru) ** 2 + ((V - cv) / rv) ** 2
    return d <= 1.0 + rough * fine if rough else d <= 1.0


def _box(U: np.ndarray, V: np.ndarray, g: Sequence[float]) -> np.ndarray:
    u0, v0, u1, v1, r = g
    cu, cv = (u0 + u1) / 2, (v0 + v1) / 2
    hu, hv = abs(u1 - u0) / 2, abs(v1 - v0) / 2
    r = min(r, hu, hv)
    qu = np.maximum(np.abs(U - cu) - (hu - r), 0.0)
    qv = np.maximum(np.abs(V - cv) - (hv - r), 0.0)
    inside = (np.abs(U - cu) <= hu) & (np.abs(V - cv) <= hv)
    return inside & (qu * qu + qv * qv <= r * r) if r > 0 else inside


def _capsule(U: np.ndarray, V: np.ndarray, g: Sequence[float]) -> np.ndarray:
    u0, v0, u1, v1, t = g
    du, dv = u1 - u0, v1 - v0
    length2 = du * du + dv * dv
    s = np.clip(((U - u0) * du + (V - v0) * dv) / length2, 0.0, 1.0) if length2 > 0 else 0.0
    pu, pv = U - (u0 + s * du), V - (v0 + s * dv)
    return pu * pu + pv * pv <= t * t


def _polygon(U: np.ndarray, V: np.ndarray, g: Sequence[float]) -> np.ndarray:
    pts = np.asarray(g, dtype=np.float64).reshape(-1, 2)
    area = np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
    sign = 1.0 if area >= 0 else -1.0
    inside = np.ones(U.shape, dtype=bool)
    for k in range(len(pts)):
        (a_u, a_v), (b_u, b_v) = pts[k], pts[(k + 1) % len(pts)]
        inside &= sign * ((b_u - a_u) * (V - a_v) - (b_v - a_v) * (U - a_u)) >= 0
    return inside


def _ring(U: np.ndarray, V: np.ndarray, g: Sequence[float]) -> np.ndarray:
    cu, cv, ro, ri = g
    d2 = (U - cu) ** 2 + (V - cv) ** 2
    return (d2 <= ro * ro) & (d2 >= ri * ri)


def part_mask(part: Part, U: np.ndarray, V: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """``(h, w)`` bool coverage of one part at the local coordinates ``U``, ``V``."""
    kind, g, _ = part
    if kind == "ell":
        return _ellipse(U, V, g, fine)
    if kind == "box":
        return _box(U, V, g)
    if kind == "cap":
        return _capsule(U, V, g)
    if kind == "poly":
        return _polygon(U, V, g)
    if kind == "ring":
        return _ring(U, V, g)
    raise ValueError(f"unknown part kind {kind!r}")


def rasterise(parts: Sequence[Part], U: np.ndarray, V: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """Role of every pixel: ``(h, w)`` int8, -1 outside the object, else the role of the last
    part covering it."""
    roles = np.full(U.shape, -1, dtype=np.int8)
    for part in parts:
        roles[part_mask(part, U, V, fine)] = part[2]
    return roles


def local_frame(
    shape: tuple[int, int],
    origin: tuple[int, int],
    centre: tuple[float, float],
    half_height: float,
    angle: float,
    mirror: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Local coordinates of a canvas window.

    Args:
        shape: ``(h, w)`` of the window, pixels; ``origin``: its top-left ``(row, col)``.
        centre: object centre ``(x, y)`` in canvas pixels; ``half_height``: pixels per unit.
        angle: in-plane rotation, radians; ``mirror``: flip ``u``.

    Returns ``U, V`` ``(h, w)`` float64 at pixel centres.
    """
    rows = np.arange(shape[0], dtype=np.float64)[:, None] + origin[0] + 0.5
    cols = np.arange(shape[1], dtype=np.float64)[None, :] + origin[1] + 0.5
    dx, dy = cols - centre[0], rows - centre[1]
    c, s = np.cos(angle), np.sin(angle)
    U = (c * dx + s * dy) / half_height
    V = (-s * dx + c * dy) / half_height
    return (-U if mirror else U), V
