"""Road network of one sequence: lanes, markings, parking, kerbs, sidewalks, lots, crossings.

The main road runs along world +x and is centred on y = 0 with one lane per direction
(right-hand traffic, the ego drives +x in the lane at y = -lane / 2), a parking band on each
side, an optional grass verge, a sidewalk, then private *lots* (front yards, hedges, fences,
buildings) as in the residential and inner-city streets of KITTI. Narrow cross streets run
along y. Every ground region is a rectangle with its own entity (for scribble strokes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .entities import EntityTable, GroundList

CURB_HEIGHT = 0.15
CROSS_WALK = 2.5  # sidewalk width along a cross street, m
BAY_WIDTH = 2.3  # width of the lay-by beyond the lane, m
LOT_KINDS = ("house", "block", "garden", "green", "yard")
"""Lot types: front yard + house, building on the sidewalk, hedge + trees + house far back,
green space without building, walled yard + hall."""


@dataclass(frozen=True)
class Lot:
    """One plot of land along the street (metres, world frame).

    Attributes:
        side: -1 right (y < 0), +1 left; x0, x1: extent along the street.
        kind: one of :data:`LOT_KINDS`.
        setback: distance from the back edge of the sidewalk to the building front.
        boundary: ``"hedge"``, ``"fence"`` or ``"none"`` along the back edge of the sidewalk.
        drive: ``(x0, x1)`` of a driveway crossing the yard (empty when none).
    """

    side: int
    x0: float
    x1: float
    kind: str
    setback: float
    boundary: str
    drive: tuple[float, ...]


@dataclass(frozen=True)
class StreetPlan:
    """Geometry shared by the layout and the object placement (metres, world frame).

    Attributes:
        x0, x1: extent of the street along x; y_half: half extent across.
        lane: lane width; park: ``(2,)`` width of the parking band beyond the lane on the
            right (y < 0) and left side (0: no band, the kerb follows the lane edge).
        verge: ``(2,)`` grass strip between kerb and sidewalk, right (y < 0) and left side.
        sidewalk: ``(2,)`` sidewalk widths on the right and left side.
        crossings: ``(K,)`` x of the cross-street centres; cross_half: their half width.
        parking: list of ``(side, x0, x1, marked)`` parking strips (marked: raw 44 ground).
        lots: the plots along both sides, see :class:`Lot`.
        street_trees: spacing of the street trees along the verge / sidewalk (0: none).
        bay: ``(x0, x1)`` of a lay-by on the left side (bus stop / loading bay, ``BAY_WIDTH``
            wide beyond the lane) ahead of the ego path's end.
    """

    x0: float
    x1: float
    y_half: float
    lane: float
    park: np.ndarray
    verge: np.ndarray
    sidewalk: np.ndarray
    crossings: np.ndarray
    cross_half: float
    parking: list[tuple[int, float, float, bool]]
    lots: list[Lot]
    street_trees: float
    bay: tuple[float, float]

    @property
    def road_half(self) -> float:
        """|y| of the outer edge of the driving lanes."""
        return self.lane

    def kerb_y(self, side: int) -> float:
        """|y| of the kerb on ``side`` (outer edge of the parking band)."""
        return self.lane + float(self.park[self.side_index(side)])

    def park_y(self, side: int) -> float:
        """|y| of the middle of the parking band on ``side``."""
        return self.lane + float(self.park[self.side_index(side)]) / 2

    @property
    def ego_lane_y(self) -> float:
        return -self.lane / 2

    @property
    def lane_centres(self) -> tuple[float, float]:
        return (-self.lane / 2, self.lane / 2)

    def side_index(self, side: int) -> int:
        return 0 if side < 0 else 1

    def walk_in(self, side: int) -> float:
        """|y| of the inner edge of the sidewalk on ``side``."""
        return self.kerb_y(side) + float(self.verge[self.side_index(side)])

    def frontage(self, side: int) -> float:
        """|y| where the lots start on ``side`` (back edge of the sidewalk)."""
        return self.walk_in(side) + float(self.sidewalk[self.side_index(side)])

    def clear_of_crossings(self, x: np.ndarray | float, margin: float) -> np.ndarray:
        """True where ``x`` is at least ``margin`` m away from every cross street's sidewalks."""
        x = np.atleast_1d(np.asarray(x, np.float64))
        if self.crossings.size == 0:
            return np.ones(x.shape, dtype=bool)
        gap = np.abs(x[:, None] - self.crossings[None, :]).min(axis=1)
        return gap > self.cross_half + CROSS_WALK + margin


def _plan_lots(rng: np.random.Generator, plan: StreetPlan, urban: float) -> list[Lot]:
    """Lots on both sides; ``urban`` in [0, 1] shifts the mix towards buildings on the walk."""
    weights = np.array([0.42, 0.05 + 0.3 * urban, 0.22, 0.13, 0.08])
    weights /= weights.sum()
    lots: list[Lot] = []
    for side in (-1, 1):
        x = plan.x0 + rng.uniform(0, 10)
        while x < plan.x1:
            length = rng.uniform(12, 28)
            kind = LOT_KINDS[int(rng.choice(len(LOT_KINDS), p=weights))]
            if plan.clear_of_crossings(np.array([x, x + length / 2, x + length]), 0.5).all():
                setback = {
                    "house": rng.uniform(2.5, 6),
                    "block": rng.uniform(0.0, 0.6),
                    "garden": rng.uniform(9, 16),
                    "green": 0.0,
                    "yard": rng.uniform(3, 8),
                }[kind]
                p = rng.random()
                boundary = {
                    "house": "hedge" if p < 0.55 else "fence" if p < 0.85 else "none",
                    "block": "none",
                    "garden": "hedge" if p < 0.75 else "fence",
                    "green": "hedge" if p < 0.6 else "none",
                    "yard": "fence",
                }[kind]
                drive: tuple[float, ...] = ()
                if kind in ("house", "yard") and rng.random() < 0.4:
                    d0 = x + rng.uniform(1, length - 5)
                    drive = (d0, d0 + rng.uniform(2.8, 4.0))
                lots.append(Lot(side, x, x + length, kind, setback, boundary, drive))
            x += length + rng.uniform(0.0, 1.5)
    return lots


def plan_street(rng: np.random.Generator, length: float, max_range: float) -> StreetPlan:
    """Random street dimensions covering the ego path ``[0, length]`` plus ``max_range``."""
    x0, x1 = -max_range - 30.0, length + max_range + 30.0
    cross_half = float(rng.uniform(3.5, 4.5))
    crossings = []
    x = x0 + rng.uniform(30, 110)
    while x < x1 - 20:
        crossings.append(x)
        x += rng.uniform(110, 220)
    lane = float(rng.uniform(3.0, 3.5))
    park = np.where(rng.random(2) < 0.55, rng.uniform(2.0, 2.3, size=2), 0.0)
    parking: list[tuple[int, float, float, bool]] = []
    for side in (-1, 1):
        x = x0 + rng.uniform(0, 15)
        while x < x1 and park[0 if side < 0 else 1] > 0:
            seg = rng.uniform(15, 50)
            if rng.random() < 0.5:
                parking.append((side, x, min(x + seg, x1), bool(rng.random() < 0.35)))
            x += seg + rng.uniform(5, 25)
    verge = np.where(rng.random(2) < 0.3, rng.uniform(0.8, 2.0, size=2), 0.0)
    sidewalk = rng.uniform(2.5, 4.5, size=2)
    bay0 = length + rng.uniform(15, 30)
    while crossings and np.abs(np.asarray(crossings) - bay0 - 13).min() < cross_half + 20:
        bay0 += 10.0
    plan = StreetPlan(
        x0=x0,
        x1=x1,
        y_half=max_range + 40.0,
        lane=lane,
        park=park,
        verge=verge,
        sidewalk=sidewalk,
        crossings=np.asarray(crossings),
        cross_half=cross_half,
        parking=parking,
        lots=[],
        street_trees=float(rng.uniform(9, 18)) if rng.random() < 0.8 else 0.0,
        bay=(bay0, bay0 + 26.0),
    )
    return dataclasses.replace(plan, lots=_plan_lots(rng, plan, float(rng.uniform(0.0, 1.0))))


def build_ground(
    plan: StreetPlan, rng: np.random.Generator, ents: EntityTable, spacing: float
) -> GroundList:
    """Ground rectangles of the street in priority order (later ones override earlier ones)."""
    g = GroundList()
    h = CURB_HEIGHT

    def region(
        raw: int,
        x0: float,
        x1: float,
        y0: float,
        y1: float,
        height: float,
        dash: tuple[float, float] = (0.0, 0.0),
        strokes: bool = True,
    ) -> None:
        long_x = (x1 - x0) >= (y1 - y0)
        ext = ((x1 - x0) / 2, (y1 - y0) / 2) if long_x else ((y1 - y0) / 2, (x1 - x0) / 2)
        ent = ents.add(
            raw,
            ((x0 + x1) / 2, (y0 + y1) / 2),
            0.0 if long_x else np.pi / 2,
            ext,
            spacing=spacing if strokes else 0.0,
            tint=tuple(rng.uniform(0.97, 1.03, size=3)),
        )
        g.add(ent, x0, x1, y0, y1, height, dash)

    X0, X1, Y = plan.x0, plan.x1, plan.y_half
    region(72, X0, X1, -Y, Y, h)  # lawns and grass between and behind the lots
    for side in (-1, 1):
        a = plan.walk_in(side)
        b = plan.frontage(side)
        region(48, X0, X1, *sorted((side * a, side * b)), h)
        for lot in plan.lots:
            if lot.side == side and lot.drive:
                region(
                    49,
                    lot.drive[0],
                    lot.drive[1],
                    *sorted((side * b, side * (b + max(lot.setback, 2.0)))),
                    h,
                )
        region(40, X0, X1, *sorted((side * plan.road_half, side * plan.kerb_y(side))), 0.0)
    for side, p0, p1, marked in plan.parking:
        if marked:
            region(44, p0, p1, *sorted((side * plan.road_half, side * plan.kerb_y(side))), 0.0)
    region(44, *plan.bay, plan.road_half, plan.road_half + BAY_WIDTH, 0.0)
    region(40, X0, X1, -plan.road_half, plan.road_half, 0.0)
    ch = plan.cross_half
    for xc in plan.crossings:
        region(40, xc - ch, xc + ch, -Y, -plan.road_half, 0.0)
        region(40, xc - ch, xc + ch, plan.road_half, Y, 0.0)
        for side in (-1, 1):
            y_in, y_out = side * plan.kerb_y(side), side * Y
            region(48, xc - ch - CROSS_WALK, xc - ch, *sorted((y_in, y_out)), h)
            region(48, xc + ch, xc + ch + CROSS_WALK, *sorted((y_in, y_out)), h)
        island0 = rng.choice([-1, 1]) * (plan.frontage(1) + rng.uniform(6, 12))
        region(49, xc - 0.8, xc + 0.8, *sorted((island0, island0 + np.sign(island0) * 6.0)), h)
    # lane markings (road level): dashed centre line and solid edge lines
    region(60, X0, X1, -0.075, 0.075, 0.0, dash=(9.0, 3.0), strokes=False)
    for side in (-1, 1):
        y_in = side * (plan.road_half - 0.25)
        region(60, X0, X1, *sorted((y_in, y_in + side * 0.15)), 0.0, strokes=False)
    return g
