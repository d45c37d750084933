"""Scene data structures: entities, primitives and ground rectangles (world frame, metres).

An *entity* is one labelled thing of the scene (a car, a tree crown, a lane, a sidewalk strip):
it carries the raw SemanticKITTI id, the instance id, a bird's-eye-view frame for its scribble
strokes and a velocity. Geometry is made of *primitives* (oriented boxes, vertical cylinders,
axis-aligned ellipsoids) and axis-aligned *ground rectangles*; each refers to one entity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BOX, CYLINDER, ELLIPSOID = 0, 1, 2
"""Primitive kind codes. Parameters (7 floats) per kind:
box ``cx, cy, cz, hx, hy, hz, yaw``; cylinder ``cx, cy, z0, z1, r, 0, 0``;
ellipsoid ``cx, cy, cz, rx, ry, rz, 0``."""


@dataclass
class EntityTable:
    """``E`` entities as parallel arrays.

    Attributes:
        raw: ``(E,)`` official raw SemanticKITTI id.
        instance: ``(E,)`` instance id (0 for stuff).
        center: ``(E, 2)`` bird's-eye-view centre at time 0, metres (world).
        yaw: ``(E,)`` heading of the entity's long axis, radians.
        extent: ``(E, 2)`` half length along / across the long axis, metres.
        velocity: ``(E, 2)`` world velocity, m/s (0 for static entities).
        spacing: ``(E,)`` spacing of periodic strokes across the long axis (0: one stroke), m.
        tint: ``(E, 3)`` per-entity colour factor for rendering (1 = palette colour).
    """

    raw: list[int] = field(default_factory=list)
    instance: list[int] = field(default_factory=list)
    center: list[tuple[float, float]] = field(default_factory=list)
    yaw: list[float] = field(default_factory=list)
    extent: list[tuple[float, float]] = field(default_factory=list)
    velocity: list[tuple[float, float]] = field(default_factory=list)
    spacing: list[float] = field(default_factory=list)
    tint: list[tuple[float, float, float]] = field(default_factory=list)

    def add(
        self,
        raw: int,
        center: tuple[float, float],
        yaw: float,
        extent: tuple[float, float],
        *,
        instance: int = 0,
        velocity: tuple[float, float] = (0.0, 0.0),
        spacing: float = 0.0,
        tint: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> int:
        """Append one entity; returns its index."""
        self.raw.append(int(raw))
        self.instance.append(int(instance))
        self.center.append((float(center[0]), float(center[1])))
        self.yaw.append(float(yaw))
        self.extent.append((float(extent[0]), float(extent[1])))
        self.velocity.append((float(velocity[0]), float(velocity[1])))
        self.spacing.append(float(spacing))
        self.tint.append(tuple(float(c) for c in tint))  # type: ignore[arg-type]
        return len(self.raw) - 1

    def arrays(self) -> Entities:
        """Freeze into NumPy arrays."""
        return Entities(
            raw=np.asarray(self.raw, np.uint16),
            instance=np.asarray(self.instance, np.uint16),
            center=np.asarray(self.center, np.float64).reshape(-1, 2),
            yaw=np.asarray(self.yaw, np.float64),
            extent=np.asarray(self.extent, np.float64).reshape(-1, 2),
            velocity=np.asarray(self.velocity, np.float64).reshape(-1, 2),
            spacing=np.asarray(self.spacing, np.float64),
            tint=np.asarray(self.tint, np.float64).reshape(-1, 3),
        )


@dataclass(frozen=True)
class Entities:
    """Array form of :class:`EntityTable` (same attributes, NumPy arrays)."""

    raw: np.ndarray
    instance: np.ndarray
    center: np.ndarray
    yaw: np.ndarray
    extent: np.ndarray
    velocity: np.ndarray
    spacing: np.ndarray
    tint: np.ndarray

    def centers_at(self, time: float) -> np.ndarray:
        """``(E, 2)`` bird's-eye-view centres at ``time`` seconds."""
        return self.center + self.velocity * time


@dataclass
class PrimitiveList:
    """Growing list of primitives (see :data:`BOX`) before freezing."""

    kind: list[int] = field(default_factory=list)
    params: list[tuple[float, ...]] = field(default_factory=list)
    entity: list[int] = field(default_factory=list)
    shade: list[float] = field(default_factory=list)

    def box(
        self,
        ent: int,
        c: tuple[float, float, float],
        h: tuple[float, float, float],
        yaw: float,
        shade: float = 1.0,
    ) -> None:
        """Oriented box: centre ``c``, half sizes ``h`` (local x, y, z), yaw about z."""
        self._add(BOX, (*c, *h, yaw), ent, shade)

    def cylinder(
        self, ent: int, cxy: tuple[float, float], z0: float, z1: float, r: float, shade: float = 1.0
    ) -> None:
        """Vertical cylinder with axis at ``cxy`` from height ``z0`` to ``z1``, radius ``r``."""
        self._add(CYLINDER, (*cxy, z0, z1, r, 0.0, 0.0), ent, shade)

    def ellipsoid(
        self,
        ent: int,
        c: tuple[float, float, float],
        r: tuple[float, float, float],
        shade: float = 1.0,
    ) -> None:
        """Axis-aligned ellipsoid with centre ``c`` and radii ``r``."""
        self._add(ELLIPSOID, (*c, *r, 0.0), ent, shade)

    def _add(self, kind: int, params: tuple[float, ...], ent: int, shade: float) -> None:
        self.kind.append(kind)
        self.params.append(tuple(float(p) for p in params))
        self.entity.append(int(ent))
        self.shade.append(float(shade))

    def arrays(self) -> Primitives:
        return Primitives(
            kind=np.asarray(self.kind, np.int8),
            params=np.asarray(self.params, np.float64).reshape(-1, 7),
            entity=np.asarray(self.entity, np.int32),
            shade=np.asarray(self.shade, np.float64),
        )


@dataclass(frozen=True)
class Primitives:
    """``P`` primitives: ``kind (P,)`` int8, ``params (P, 7)``, ``entity (P,)``, ``shade (P,)``
    (a brightness factor for rendering, e.g. dark windows)."""

    kind: np.ndarray
    params: np.ndarray
    entity: np.ndarray
    shade: np.ndarray

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def moved(self, offset_xy: np.ndarray) -> Primitives:
        """Copy with every primitive shifted by its entity's ``offset_xy`` ``(E, 2)`` metres."""
        params = self.params.copy()
        params[:, :2] += offset_xy[self.entity]
        return Primitives(self.kind, params, self.entity, self.shade)

    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Conservative bounds: ``(P, 2)`` BEV centre, ``(P,)`` BEV radius, z min, z max."""
        p = self.params
        cxy = p[:, :2]
        box, cyl = self.kind == BOX, self.kind == CYLINDER
        radius = np.where(
            box, np.hypot(p[:, 3], p[:, 4]), np.where(cyl, p[:, 4], np.maximum(p[:, 3], p[:, 4]))
        )
        zmin = np.where(box, p[:, 2] - p[:, 5], np.where(cyl, p[:, 2], p[:, 2] - p[:, 5]))
        zmax = np.where(box, p[:, 2] + p[:, 5], np.where(cyl, p[:, 3], p[:, 2] + p[:, 5]))
        return cxy, radius, zmin, zmax


@dataclass
class GroundList:
    """Ground rectangles in priority order (a later one wins where they overlap)."""

    rect: list[tuple[float, float, float, float]] = field(default_factory=list)
    dash: list[tuple[float, float]] = field(default_factory=list)
    height: list[float] = field(default_factory=list)
    entity: list[int] = field(default_factory=list)

    def add(
        self,
        ent: int,
        x0: float,
        x1: float,
        y0: float,
        y1: float,
        height: float,
        dash: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """Rectangle ``[x0, x1) x [y0, y1)`` at ``height`` m; ``dash = (period, on)`` along x
        makes it dashed (period 0: solid)."""
        self.rect.append((x0, x1, y0, y1))
        self.dash.append(dash)
        self.height.append(height)
        self.entity.append(ent)

    def arrays(self) -> Ground:
        return Ground(
            rect=np.asarray(self.rect, np.float64).reshape(-1, 4),
            dash=np.asarray(self.dash, np.float64).reshape(-1, 2),
            height=np.asarray(self.height, np.float64),
            entity=np.asarray(self.entity, np.int32),
        )


@dataclass(frozen=True)
class Ground:
    """``G`` ground rectangles: ``rect (G, 4)`` x0, x1, y0, y1; ``dash (G, 2)``;
    ``height (G,)`` metres (0 = road level); ``entity (G,)``."""

    rect: np.ndarray
    dash: np.ndarray
    height: np.ndarray
    entity: np.ndarray

    def query(self, xy: np.ndarray) -> np.ndarray:
        """Index of the rectangle covering each ``(N, 2)`` point, ``(N,)`` int (-1: none)."""
        x, y = xy[:, 0], xy[:, 1]
        out = np.full(xy.shape[0], -1, dtype=np.int64)
        if xy.shape[0] == 0:
            return out
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        r = self.rect
        near = (r[:, 1] >= lo[0]) & (r[:, 0] <= hi[0]) & (r[:, 3] >= lo[1]) & (r[:, 2] <= hi[1])
        for g in np.flatnonzero(near):
            x0, x1, y0, y1 = r[g]
            m = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
            period, on = self.dash[g]
            if period > 0:
                m &= np.mod(x - x0, period) < on
            out[m] = g
        return out


@dataclass(frozen=True)
class Scene:
    """One generated street: entities, primitives (at time 0), ground and the ego path.

    Attributes:
        ego_xy: ``(F, 2)`` LiDAR position (BEV, world) per frame, metres.
        ego_yaw: ``(F,)`` LiDAR heading per frame, radians.
        curb_height: height of raised ground (sidewalks, terrain), metres.
        extent: ``(x0, x1, y0, y1)`` of the ground; rays leaving it miss.
    """

    entities: Entities
    primitives: Primitives
    ground: Ground
    ego_xy: np.ndarray
    ego_yaw: np.ndarray
    curb_height: float
    extent: tuple[float, float, float, float]

    def primitives_at(self, time: float) -> Primitives:
        """Primitives with moving entities advanced to ``time`` seconds."""
        return self.primitives.moved(self.entities.velocity * time)
