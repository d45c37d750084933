"""Vectorised ray casting of one ray bundle (common origin) against primitives and the ground.

Rays are sorted by azimuth once; every primitive is tested only against the rays inside its
azimuth interval (one contiguous slice of the sorted rays) whose elevation falls inside the
primitive's elevation interval. No Python loop runs per ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .entities import BOX, CYLINDER, ELLIPSOID, Ground, Primitives

_EPS = 1e-6


@dataclass(frozen=True)
class Hits:
    """Nearest hit of ``R`` rays.

    Attributes:
        t: ``(R,)`` distance along the (unit) ray, metres; ``inf`` for a miss.
        entity: ``(R,)`` entity index, -1 for a miss.
        normal: ``(R, 3)`` unit surface normal (world), zeros for a miss.
        shade: ``(R,)`` primitive brightness factor (1 on the ground and for misses).
    """

    t: np.ndarray
    entity: np.ndarray
    normal: np.ndarray
    shade: np.ndarray


def _ray_angles(dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth and elevation ``(R,)`` radians of unit directions ``(R, 3)``."""
    return np.arctan2(dirs[:, 1], dirs[:, 0]), np.arctan2(
        dirs[:, 2], np.hypot(dirs[:, 0], dirs[:, 1])
    )


def _candidate_pairs(
    origin: np.ndarray, dirs: np.ndarray, prims: Primitives, max_t: float
) -> tuple[np.ndarray, np.ndarray]:
    """(primitive, ray) index pairs whose angular bounds overlap; ``(K,)`` each."""
    az, el = _ray_angles(dirs)
    order = np.argsort(az, kind="stable")
    az_sorted = az[order]
    cxy, rad, zmin, zmax = prims.bounds()
    rel = cxy - origin[:2]
    dist = np.hypot(rel[:, 0], rel[:, 1])
    keep = dist - rad < max_t
    full = rad >= dist * 0.999
    half = np.where(full, np.pi, np.arcsin(np.clip(rad / np.maximum(dist, _EPS), 0.0, 1.0)))
    centre = np.arctan2(rel[:, 1], rel[:, 0])
    dmin = np.maximum(dist - rad, 1e-3)
    dmax = dist + rad
    corners = np.stack([np.arctan2(z - origin[2], d) for z in (zmin, zmax) for d in (dmin, dmax)])
    el_lo, el_hi = corners.min(axis=0) - 1e-4, corners.max(axis=0) + 1e-4

    ids = np.flatnonzero(keep)
    lo, hi = centre[ids] - half[ids] - 1e-4, centre[ids] + half[ids] + 1e-4
    full_ids = full[ids]
    lo = np.where(full_ids, -np.pi - 1.0, lo)
    hi = np.where(full_ids, np.pi + 1.0, hi)
    # intervals crossing +-pi are split in two
    wrap_lo = (lo < -np.pi) & ~full_ids
    wrap_hi = (hi > np.pi) & ~full_ids
    seg_id = np.concatenate([ids, ids[wrap_lo], ids[wrap_hi]])
    seg_lo = np.concatenate(
        [np.where(wrap_lo, -np.pi, lo), lo[wrap_lo] + 2 * np.pi, np.full(wrap_hi.sum(), -np.pi)]
    )
    seg_hi = np.concatenate(
        [np.where(wrap_hi, np.pi, hi), np.full(wrap_lo.sum(), np.pi), hi[wrap_hi] - 2 * np.pi]
    )
    start = np.searchsorted(az_sorted, seg_lo, side="left")
    stop = np.searchsorted(az_sorted, seg_hi, side="right")
    lengths = np.maximum(stop - start, 0)
    total = int(lengths.sum())
    prim = np.repeat(seg_id, lengths)
    offsets = np.repeat(start - (np.cumsum(lengths) - lengths), lengths)
    pos = np.arange(total) + offsets
    ray = order[pos]
    e = el[ray]
    ok = (e >= el_lo[prim]) & (e <= el_hi[prim])
    return prim[ok], ray[ok]


def _intersect_boxes(o: np.ndarray, d: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Entry distance ``(K,)`` of rays (origin ``o (3,)``, dirs ``(K, 3)``) into boxes."""
    c, s = np.cos(p[:, 6]), np.sin(p[:, 6])
    rx, ry = o[0] - p[:, 0], o[1] - p[:, 1]
    ol = np.stack([c * rx + s * ry, -s * rx + c * ry, o[2] - p[:, 2]], axis=1)
    dl = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], axis=1)
    dl = np.where(np.abs(dl) < 1e-12, 1e-12, dl)
    inv = 1.0 / dl
    t1 = (-p[:, 3:6] - ol) * inv
    t2 = (p[:, 3:6] - ol) * inv
    tn = np.minimum(t1, t2).max(axis=1)
    tf = np.maximum(t1, t2).min(axis=1)
    return np.where((tn <= tf) & (tn > _EPS), tn, np.inf)


def _intersect_cylinders(o: np.ndarray, d: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Distance ``(K,)`` to vertical cylinders ``(K, 7)`` (side and top cap)."""
    rx, ry = o[0] - p[:, 0], o[1] - p[:, 1]
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = 2 * (rx * d[:, 0] + ry * d[:, 1])
    c = rx**2 + ry**2 - p[:, 4] ** 2
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        ts = (-b - np.sqrt(disc)) / (2 * a)
    z = o[2] + ts * d[:, 2]
    side = np.where(
        (disc >= 0) & (a > 1e-12) & (ts > _EPS) & (z >= p[:, 2]) & (z <= p[:, 3]), ts, np.inf
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        tc = (p[:, 3] - o[2]) / d[:, 2]
    cx, cy = rx + tc * d[:, 0], ry + tc * d[:, 1]
    cap = np.where((d[:, 2] < 0) & (tc > _EPS) & (cx**2 + cy**2 <= p[:, 4] ** 2), tc, np.inf)
    return np.minimum(side, cap)


def _intersect_ellipsoids(o: np.ndarray, d: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Entry distance ``(K,)`` into axis-aligned ellipsoids ``(K, 7)``."""
    r = p[:, 3:6]
    ol = (o - p[:, :3]) / r
    dl = d / r
    a = (dl * dl).sum(axis=1)
    b = 2 * (ol * dl).sum(axis=1)
    c = (ol * ol).sum(axis=1) - 1.0
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / (2 * a)
    return np.where((disc >= 0) & (t > _EPS), t, np.inf)


def _normals(points: np.ndarray, kinds: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Unit normals ``(K, 3)`` at hit ``points (K, 3)`` on primitives ``(K, 7)``."""
    n = np.zeros_like(points)
    box = kinds == BOX
    if box.any():
        q = p[box]
        c, s = np.cos(q[:, 6]), np.sin(q[:, 6])
        rx, ry = points[box, 0] - q[:, 0], points[box, 1] - q[:, 1]
        loc = np.stack([c * rx + s * ry, -s * rx + c * ry, points[box, 2] - q[:, 2]], axis=1)
        ratio = np.abs(loc) / q[:, 3:6]
        axis = ratio.argmax(axis=1)
        sign = np.sign(loc[np.arange(loc.shape[0]), axis])
        nl = np.zeros_like(loc)
        nl[np.arange(loc.shape[0]), axis] = sign
        n[box] = np.stack([c * nl[:, 0] - s * nl[:, 1], s * nl[:, 0] + c * nl[:, 1], nl[:, 2]], 1)
    cyl = kinds == CYLINDER
    if cyl.any():
        q = p[cyl]
        top = points[cyl, 2] >= q[:, 3] - 1e-6
        radial = np.stack(
            [points[cyl, 0] - q[:, 0], points[cyl, 1] - q[:, 1], np.zeros(q.shape[0])], axis=1
        )
        n[cyl] = np.where(top[:, None], [0.0, 0.0, 1.0], radial)
    ell = kinds == ELLIPSOID
    if ell.any():
        q = p[ell]
        n[ell] = (points[ell] - q[:, :3]) / q[:, 3:6] ** 2
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _cast_ground(
    origin: np.ndarray,
    dirs: np.ndarray,
    ground: Ground,
    curb: float,
    extent: tuple[float, float, float, float],
    substeps: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground hits: ``t (R,)``, ground rectangle index ``(R,)``, normal ``(R, 3)``.

    The ground has two levels (0 and ``curb``). A ray that reaches the road level inside a
    raised region hits the curb face, found by sampling between the two levels.
    """
    n = dirs.shape[0]
    t = np.full(n, np.inf)
    rect = np.full(n, -1, dtype=np.int64)
    normal = np.zeros((n, 3))
    down = np.flatnonzero(dirs[:, 2] < -1e-9)
    d = dirs[down]
    t_hi = (curb - origin[2]) / d[:, 2]
    t_lo = (0.0 - origin[2]) / d[:, 2]
    g_hi = ground.query(origin[:2] + t_hi[:, None] * d[:, :2])
    raised_hi = (g_hi >= 0) & (ground.height[g_hi] > 0)
    g_lo = ground.query(origin[:2] + t_lo[:, None] * d[:, :2])
    low_lo = (g_lo >= 0) & (ground.height[g_lo] <= 0)
    t_sel = np.where(raised_hi, t_hi, np.where(low_lo, t_lo, np.inf))
    g_sel = np.where(raised_hi, g_hi, np.where(low_lo, g_lo, -1))
    face = np.flatnonzero(~raised_hi & ~low_lo & (g_lo >= 0))
    nrm = np.zeros((down.size, 3))
    nrm[:, 2] = 1.0
    if face.size:
        fracs = (np.arange(1, substeps + 1) / substeps)[None, :]
        ts = t_hi[face, None] + fracs * (t_lo[face] - t_hi[face])[:, None]  # (F, S)
        pts = origin[:2] + ts[..., None] * d[face][:, None, :2]
        gs = ground.query(pts.reshape(-1, 2)).reshape(ts.shape)
        raised = (gs >= 0) & (ground.height[np.maximum(gs, 0)] > 0)
        first = raised.argmax(axis=1)
        rows = np.arange(face.size)
        t_sel[face] = ts[rows, first]
        g_sel[face] = gs[rows, first]
        horiz = -d[face, :2] / np.maximum(np.linalg.norm(d[face, :2], axis=1, keepdims=True), 1e-12)
        nrm[face] = np.concatenate([horiz, np.zeros((face.size, 1))], axis=1)
    hit_xy = origin[:2] + np.where(np.isfinite(t_sel), t_sel, 0.0)[:, None] * d[:, :2]
    inside = (
        (hit_xy[:, 0] >= extent[0])
        & (hit_xy[:, 0] < extent[1])
        & (hit_xy[:, 1] >= extent[2])
        & (hit_xy[:, 1] < extent[3])
    )
    t_sel = np.where(inside, t_sel, np.inf)
    t[down], rect[down], normal[down] = t_sel, g_sel, nrm
    return t, rect, normal


def cast(
    origin: np.ndarray,
    dirs: np.ndarray,
    prims: Primitives,
    ground: Ground,
    curb: float,
    extent: tuple[float, float, float, float],
    max_t: float,
) -> Hits:
    """Nearest hit of rays from ``origin (3,)`` along unit ``dirs (R, 3)`` (world, metres).

    Hits farther than ``max_t`` are misses.
    """
    origin = np.asarray(origin, np.float64)
    n = dirs.shape[0]
    t_g, rect, n_g = _cast_ground(origin, dirs, ground, curb, extent)
    best = np.where(t_g <= max_t, t_g, np.inf)
    entity = np.where(np.isfinite(best), ground.entity[np.maximum(rect, 0)], -1)
    normal = np.where(np.isfinite(best)[:, None], n_g, 0.0)
    shade = np.ones(n)
    if len(prims):
        prim, ray = _candidate_pairs(origin, dirs, prims, max_t)
        tp = np.full(prim.shape[0], np.inf)
        kinds = prims.kind[prim]
        for code, fn in (
            (BOX, _intersect_boxes),
            (CYLINDER, _intersect_cylinders),
            (ELLIPSOID, _intersect_ellipsoids),
        ):
            m = kinds == code
            if m.any():
                tp[m] = fn(origin, dirs[ray[m]], prims.params[prim[m]])
        hit = tp < best[ray]
        prim, ray, tp = prim[hit], ray[hit], tp[hit]
        if prim.size:
            # nearest primitive per ray: sort by (ray, t) and keep the first of each ray
            order = np.lexsort((tp, ray))
            prim, ray, tp = prim[order], ray[order], tp[order]
            first = np.ones(ray.size, dtype=bool)
            first[1:] = ray[1:] != ray[:-1]
            prim, ray, tp = prim[first], ray[first], tp[first]
            best[ray] = tp
            entity[ray] = prims.entity[prim]
            pts = origin + tp[:, None] * dirs[ray]
            normal[ray] = _normals(pts, prims.kind[prim], prims.params[prim])
            shade[ray] = prims.shade[prim]
    return Hits(t=best, entity=entity.astype(np.int64), normal=normal, shade=shade)
