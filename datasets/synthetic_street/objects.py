"""Builders of single objects from primitives (world frame, metres, yaw in radians).

Each builder adds one entity (or one per differently labelled part) and its primitives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .entities import EntityTable, PrimitiveList

THING_RAW_IDS: frozenset[int] = frozenset(
    {10, 11, 13, 15, 18, 20, 30, 31, 32, 252, 253, 254, 255, 256, 257, 258, 259}
)
PAINTS: np.ndarray = np.array(
    [
        [0.9, 0.9, 0.92],
        [0.15, 0.15, 0.17],
        [0.7, 0.1, 0.1],
        [0.1, 0.25, 0.6],
        [0.55, 0.57, 0.6],
        [0.85, 0.75, 0.3],
        [0.2, 0.45, 0.25],
        [0.95, 0.95, 0.95],
    ]
)
"""Car paint colours (RGB in [0, 1]) divided by the palette colour when rendering."""
FENCE_STROKE_SPACING = 2.5
"""Spacing of the scribble strokes across fences and walls, metres."""


@dataclass
class Builder:
    """Entity table + primitive list + the next free instance id of one sequence."""

    rng: np.random.Generator
    ents: EntityTable = field(default_factory=EntityTable)
    prims: PrimitiveList = field(default_factory=PrimitiveList)
    next_instance: int = 1

    def entity(
        self,
        raw: int,
        xy: tuple[float, float],
        yaw: float,
        ext: tuple[float, float],
        speed: float = 0.0,
        tint: tuple[float, float, float] | None = None,
        spacing: float = 0.0,
    ) -> int:
        """Add an entity; things get a fresh instance id; ``speed`` (m/s) is along ``yaw``;
        ``spacing`` (m) of periodic scribble strokes across the long axis (0: none)."""
        inst = 0
        if raw in THING_RAW_IDS:
            inst, self.next_instance = self.next_instance, self.next_instance + 1
        if tint is None:
            tint = tuple(self.rng.uniform(0.85, 1.15, size=3))
        vel = (speed * np.cos(yaw), speed * np.sin(yaw))
        return self.ents.add(
            raw, xy, yaw, ext, instance=inst, velocity=vel, tint=tint, spacing=spacing
        )

    def paint(self) -> tuple[float, float, float]:
        return tuple(PAINTS[self.rng.integers(len(PAINTS))] * self.rng.uniform(0.9, 1.1, 3))

    # ------------------------------------------------------------------ vehicles
    def _wheels(
        self, ent: int, x: float, y: float, yaw: float, half_l: float, half_w: float, r: float
    ) -> None:
        c, s = np.cos(yaw), np.sin(yaw)
        for a in (-0.7 * half_l, 0.7 * half_l):
            for b in (-half_w + 0.12, half_w - 0.12):
                self.prims.box(
                    ent, (x + c * a - s * b, y + s * a + c * b, r), (r, 0.12, r), yaw, shade=0.25
                )

    def car(self, raw: int, x: float, y: float, yaw: float, speed: float = 0.0) -> float:
        """Body + cabin + wheels; returns the car length (m)."""
        length, width = self.rng.uniform(3.9, 4.8), self.rng.uniform(1.7, 1.9)
        hl, hw = length / 2, width / 2
        ent = self.entity(raw, (x, y), yaw, (hl, hw), speed, tint=self.paint())
        self.prims.box(ent, (x, y, 0.65), (hl, hw, 0.35), yaw)
        off = self.rng.uniform(-0.3, 0.1)
        cab = (x + np.cos(yaw) * off, y + np.sin(yaw) * off, 1.25)
        self.prims.box(ent, cab, (hl * 0.55, hw * 0.9, 0.25), yaw, shade=0.55)
        self._wheels(ent, x, y, yaw, hl, hw, 0.32)
        return length

    def truck(self, raw: int, x: float, y: float, yaw: float, speed: float = 0.0) -> float:
        """Cab + cargo box + wheels; returns the length (m)."""
        cargo, cab_l, hw = self.rng.uniform(4.5, 7.0), 2.2, 1.25
        length = cargo + cab_l + 0.3
        ent = self.entity(raw, (x, y), yaw, (length / 2, hw), speed, tint=self.paint())
        c, s = np.cos(yaw), np.sin(yaw)
        a_cab = length / 2 - cab_l / 2
        self.prims.box(ent, (x + c * a_cab, y + s * a_cab, 1.55), (cab_l / 2, hw, 1.1), yaw)
        a_cargo = -length / 2 + cargo / 2
        hz = self.rng.uniform(1.4, 1.8)
        self.prims.box(
            ent, (x + c * a_cargo, y + s * a_cargo, 0.6 + hz), (cargo / 2, hw, hz), yaw, shade=0.9
        )
        self._wheels(ent, x, y, yaw, length / 2, hw, 0.5)
        return length

    def bus(self, raw: int, x: float, y: float, yaw: float, speed: float = 0.0) -> float:
        """A bus or trailer (other-vehicle): one long tall box with a window band."""
        length, hw = self.rng.uniform(8.0, 12.0), 1.27
        ent = self.entity(raw, (x, y), yaw, (length / 2, hw), speed, tint=self.paint())
        self.prims.box(ent, (x, y, 1.3), (length / 2, hw, 0.9), yaw)
        self.prims.box(ent, (x, y, 2.6), (length / 2 - 0.1, hw - 0.02, 0.45), yaw, shade=0.5)
        self._wheels(ent, x, y, yaw, length / 2, hw, 0.5)
        return length

    def two_wheeler(
        self,
        raw: int,
        x: float,
        y: float,
        yaw: float,
        speed: float = 0.0,
        motor: bool = False,
        rider: bool = False,
    ) -> float:
        """Bicycle or motorcycle, optionally ridden (the rider shares the entity's label)."""
        length = 2.0 if motor else 1.7
        half_w = 0.35 if motor else 0.25
        ent = self.entity(
            raw, (x, y), yaw, (length / 2, half_w), speed, tint=self.paint() if motor else None
        )
        if motor:
            self.prims.box(ent, (x, y, 0.65), (length / 2, 0.22, 0.3), yaw)
        else:
            self.prims.box(ent, (x, y, 0.65), (length / 2, 0.04, 0.33), yaw, shade=0.7)
        c, s = np.cos(yaw), np.sin(yaw)
        a = 0.38 * length
        self.prims.box(ent, (x + c * a, y + s * a, 1.0), (0.05, half_w, 0.04), yaw, shade=0.4)
        if rider:
            self.prims.cylinder(ent, (x - c * 0.1, y - s * 0.1), 0.8, 1.55, 0.21)
            self.prims.ellipsoid(
                ent, (x - c * 0.05, y - s * 0.05, 1.68), (0.12, 0.12, 0.13), shade=0.8
            )
        return length

    def parked_rider(self, x: float, y: float, yaw: float, motor: bool) -> None:
        """Static bicyclist (31) or motorcyclist (32): a rider standing beside or sitting on a
        parked two-wheeler; bike and rider form one instance, as in SemanticKITTI."""
        raw = 32 if motor else 31
        beside = self.rng.random() < 0.5
        self.two_wheeler(raw, x, y, yaw, motor=motor, rider=not beside)
        if beside:
            ent = len(self.ents.raw) - 1
            c, s = np.cos(yaw), np.sin(yaw)
            px, py = x + s * 0.55, y - c * 0.55  # on the far side from the road
            height = self.rng.uniform(1.6, 1.85)
            self.prims.cylinder(ent, (px, py), 0.0, height - 0.24, 0.2)
            self.prims.ellipsoid(ent, (px, py, height - 0.12), (0.11, 0.11, 0.12), shade=0.8)

    def person(self, raw: int, x: float, y: float, yaw: float, speed: float = 0.0) -> None:
        """Body cylinder + head ellipsoid."""
        height = self.rng.uniform(1.55, 1.9)
        r = self.rng.uniform(0.18, 0.25)
        ent = self.entity(raw, (x, y), yaw, (r, r), speed, tint=self.paint())
        self.prims.cylinder(ent, (x, y), 0.0, height - 0.24, r)
        self.prims.ellipsoid(ent, (x, y, height - 0.12), (0.11, 0.11, 0.12), shade=0.8)

    # ------------------------------------------------------------------ street furniture
    def tree(self, x: float, y: float, big: bool = False) -> None:
        """Trunk (71) and crown (70) as two entities; ``big`` trees have wider, taller crowns."""
        h = self.rng.uniform(1.6, 3.0)
        r = self.rng.uniform(0.15, 0.3) * (1.4 if big else 1.0)
        ent = self.entity(71, (x, y), 0.0, (r, r))
        self.prims.cylinder(ent, (x, y), 0.0, h + 0.5, r)
        scale = 1.5 if big else 1.0
        rxy, rz = self.rng.uniform(1.3, 2.6) * scale, self.rng.uniform(1.3, 2.4) * scale
        crown = self.entity(70, (x, y), 0.0, (rxy, rxy))
        self.prims.ellipsoid(
            crown, (x, y, h + 0.7 * rz), (rxy, rxy * self.rng.uniform(0.8, 1.2), rz)
        )

    def bush(self, x: float, y: float) -> None:
        rx, ry = self.rng.uniform(0.5, 1.2, size=2)
        rz = self.rng.uniform(0.4, 0.9)
        ent = self.entity(70, (x, y), 0.0, (rx, ry))
        self.prims.ellipsoid(ent, (x, y, 0.15 + rz * 0.6), (rx, ry, rz))

    def hedge(self, x0: float, x1: float, y0: float, y1: float, height: float) -> None:
        """Vegetation (70): a clipped hedge filling the rectangle, ``height`` m tall."""
        self._rect(70, x0, x1, y0, y1, 0.0, height)

    def wall(self, x0: float, x1: float, y0: float, y1: float, height: float) -> None:
        """Fence (51): a fence or garden wall filling the thin rectangle, ``height`` m tall."""
        self._rect(51, x0, x1, y0, y1, 0.15, height)

    def block(self, x0: float, x1: float, y0: float, y1: float, height: float) -> None:
        """Building (50): an axis-aligned block with a darker band of windows per floor."""
        self._rect(50, x0, x1, y0, y1, 0.0, height)

    def _rect(
        self, raw: int, x0: float, x1: float, y0: float, y1: float, z0: float, height: float
    ) -> None:
        long_x = (x1 - x0) >= (y1 - y0)
        hx, hy = (x1 - x0) / 2, (y1 - y0) / 2
        ext = (hx, hy) if long_x else (hy, hx)
        ent = self.entity(
            raw,
            ((x0 + x1) / 2, (y0 + y1) / 2),
            0.0 if long_x else np.pi / 2,
            ext,
            spacing=FENCE_STROKE_SPACING if raw == 51 else 0.0,
        )
        self.prims.box(
            ent, ((x0 + x1) / 2, (y0 + y1) / 2, z0 + height / 2), (hx, hy, height / 2), 0.0
        )

    def street_light(self, x: float, y: float, side: int) -> None:
        """Pole (80) with an arm reaching over the road."""
        h = self.rng.uniform(6.0, 8.0)
        ent = self.entity(80, (x, y), np.pi / 2, (0.1, 0.1))
        self.prims.cylinder(ent, (x, y), 0.0, h, 0.1)
        self.prims.box(ent, (x, y - side * 0.9, h - 0.1), (0.15, 0.9, 0.08), 0.0, shade=0.8)

    def sign(self, x: float, y: float, yaw: float) -> None:
        """Sign pole (80) and plate (81) as two entities; the plate faces along ``yaw``."""
        ent = self.entity(80, (x, y), 0.0, (0.05, 0.05))
        self.prims.cylinder(ent, (x, y), 0.0, 2.6, 0.05)
        size = self.rng.uniform(0.3, 0.45)
        plate = self.entity(81, (x, y), yaw + np.pi / 2, (size, 0.03))
        self.prims.box(plate, (x, y, 2.6 - size), (0.03, size, size), yaw)

    def structure(self, x: float, y: float, side: int) -> None:
        """Other-structure (52, ignored): a bus shelter (back wall + roof)."""
        ent = self.entity(52, (x, y), 0.0, (2.0, 0.8))
        self.prims.box(ent, (x, y + side * 0.7, 1.3), (2.0, 0.05, 1.15), 0.0, shade=0.7)
        self.prims.box(ent, (x, y, 2.5), (2.1, 0.8, 0.05), 0.0)

    def bin(self, x: float, y: float) -> None:
        """Other-object (99, ignored): a litter bin."""
        ent = self.entity(99, (x, y), 0.0, (0.3, 0.3))
        self.prims.cylinder(ent, (x, y), 0.0, 1.0, 0.3)
