"""ScribbleKITTI-like weak labels: thin bird's-eye-view strokes through every scene entity.

Each entity carries a cross of strokes through its centre along its principal axes; ground
regions and fences (entities with a stroke spacing) also get periodic strokes across their long
axis; thin walls get only those, not the line along their length.
A point is scribbled when it lies within the stroke half width of one of its own entity's
strokes; an entity seen in the frame without any scribbled point gets its point nearest to a
stroke scribbled. Points of classes that map to ignore are never scribbled.
"""

from __future__ import annotations

import numpy as np

from kdseg.datasets.semantickitti_labels import RAW_TO_TRAIN_LUT

from .entities import Entities

THIN_WALL_M = 0.3
"""Entities with periodic strokes thinner (half width across, metres) than this get no centre
line stroke: a bird's-eye-view line along a thin wall would scribble all of its face."""


def stroke_distance(
    world_xy: np.ndarray, entity: np.ndarray, ents: Entities, time: float
) -> np.ndarray:
    """Bird's-eye-view distance ``(N,)`` (metres) of points to their own entity's strokes.

    Args:
        world_xy: ``(N, 2)`` point positions (world frame, metres).
        entity: ``(N,)`` entity index per point (must be >= 0).
        time: seconds (moving entities' strokes move with them).
    """
    centre = ents.centers_at(time)[entity]
    yaw = ents.yaw[entity]
    rel = world_xy - centre
    c, s = np.cos(yaw), np.sin(yaw)
    a = c * rel[:, 0] + s * rel[:, 1]  # along the long axis
    b = -s * rel[:, 0] + c * rel[:, 1]  # across
    ext = ents.extent[entity]
    spacing = ents.spacing[entity]
    # centre line, except on thin walls with periodic strokes (it would cover their whole face)
    thin_wall = (spacing > 0) & (ext[:, 1] < THIN_WALL_M)
    along = np.where((np.abs(a) <= ext[:, 0]) & ~thin_wall, np.abs(b), np.inf)
    across = np.where(np.abs(b) <= ext[:, 1], np.abs(a), np.inf)  # stroke through the centre
    periodic = np.where(
        (spacing > 0) & (np.abs(b) <= ext[:, 1]),
        np.abs(np.mod(a + spacing / 2, np.where(spacing > 0, spacing, 1.0)) - spacing / 2),
        np.inf,
    )
    return np.minimum(np.minimum(along, across), periodic)


def scribble_mask(
    world_xy: np.ndarray,
    entity: np.ndarray,
    raw: np.ndarray,
    ents: Entities,
    time: float,
    half_width: float,
) -> np.ndarray:
    """Which of ``N`` points are scribbled, ``(N,)`` bool.

    Args:
        world_xy: ``(N, 2)`` world positions, metres; entity: ``(N,)`` entity index (-1: none);
        raw: ``(N,)`` raw ids; half_width: stroke half width, metres.
    """
    labelled = (entity >= 0) & (RAW_TO_TRAIN_LUT[raw.astype(np.int64)] != 255)
    idx = np.flatnonzero(labelled)
    dist = stroke_distance(world_xy[idx], entity[idx], ents, time)
    mask = np.zeros(entity.shape[0], dtype=bool)
    mask[idx] = dist < half_width
    # every visible entity keeps at least its point nearest to a stroke
    order = np.lexsort((dist, entity[idx]))
    ent_sorted = entity[idx][order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = ent_sorted[1:] != ent_sorted[:-1]
    has_any = np.zeros(ents.raw.shape[0], dtype=bool)
    has_any[entity[mask]] = True
    nearest = idx[order[first]]
    mask[nearest[~has_any[entity[nearest]]]] = True
    return mask
