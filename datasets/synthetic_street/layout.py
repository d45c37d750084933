"""Road network of one sequence: lanes, markings, parking, curbs, sidewalks, terrain, crossings.

The main road runs along world +x and is centred on y = 0 with two lanes per direction
(right-hand traffic, the ego drives +x in the lane at y = -1.75). Cross streets run along y.
Every region is a ground rectangle with its own entity (for scribble strokes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .entities import EntityTable, GroundList

LANE_WIDTH = 3.5
ROAD_HALF = 2 * LANE_WIDTH  # outer edge of the driving lanes, m
KERB_Y = ROAD_HALF + 2.5  # parking band between ROAD_HALF and KERB_Y; sidewalk beyond
CURB_HEIGHT = 0.15
CROSS_HALF = 6.0  # half width of a cross street, m
CROSS_WALK = 3.0  # sidewalk width along a cross street, m
EGO_LANE_Y = -LANE_WIDTH / 2
LANE_CENTRES = (-1.5 * LANE_WIDTH, -0.5 * LANE_WIDTH, 0.5 * LANE_WIDTH, 1.5 * LANE_WIDTH)


@dataclass(frozen=True)
class StreetPlan:
    """Geometry shared by the layout and the object placement (metres, world frame).

    Attributes:
        x0, x1: extent of the street along x; y_half: half extent across.
        sidewalk: ``(2,)`` sidewalk widths on the right (y < 0) and left side.
        terrain: ``(2,)`` grass strip widths beyond the sidewalks.
        crossings: ``(K,)`` x of the cross-street centres.
        parking: list of ``(side, x0, x1)`` parking strips (side -1 right, +1 left).
    """

    x0: float
    x1: float
    y_half: float
    sidewalk: np.ndarray
    terrain: np.ndarray
    crossings: np.ndarray
    parking: list[tuple[int, float, float]]

    def side_index(self, side: int) -> int:
        return 0 if side < 0 else 1

    def frontage(self, side: int) -> float:
        """|y| where the building zone starts on ``side`` (beyond sidewalk and terrain)."""
        i = self.side_index(side)
        return KERB_Y + float(self.sidewalk[i] + self.terrain[i])

    def clear_of_crossings(self, x: np.ndarray | float, margin: float) -> np.ndarray:
        """True where ``x`` is at least ``margin`` m away from every cross street's sidewalks."""
        x = np.atleast_1d(np.asarray(x, np.float64))
        if self.crossings.size == 0:
            return np.ones(x.shape, dtype=bool)
        gap = np.abs(x[:, None] - self.crossings[None, :]).min(axis=1)
        return gap > CROSS_HALF + CROSS_WALK + margin


def plan_street(rng: np.random.Generator, length: float, max_range: float) -> StreetPlan:
    """Random street dimensions covering the ego path ``[0, length]`` plus ``max_range``."""
    x0, x1 = -max_range - 30.0, length + max_range + 30.0
    crossings = []
    x = x0 + rng.uniform(20, 80)
    while x < x1 - 20:
        crossings.append(x)
        x += rng.uniform(70, 130)
    parking: list[tuple[int, float, float]] = []
    for side in (-1, 1):
        x = x0 + rng.uniform(0, 15)
        while x < x1:
            seg = rng.uniform(20, 60)
            if rng.random() < 0.7:
                parking.append((side, x, min(x + seg, x1)))
            x += seg + rng.uniform(5, 25)
    return StreetPlan(
        x0=x0, x1=x1, y_half=max_range + 40.0,
        sidewalk=rng.uniform(2.5, 4.0, size=2), terrain=rng.uniform(1.5, 4.0, size=2),
        crossings=np.asarray(crossings), parking=parking,
    )


def build_ground(plan: StreetPlan, rng: np.random.Generator, ents: EntityTable,
                 spacing: float) -> GroundList:
    """Ground rectangles of the street in priority order (later ones override earlier ones)."""
    g = GroundList()
    h = CURB_HEIGHT

    def region(raw: int, x0: float, x1: float, y0: float, y1: float, height: float,
               dash: tuple[float, float] = (0.0, 0.0), strokes: bool = True) -> None:
        long_x = (x1 - x0) >= (y1 - y0)
        ext = ((x1 - x0) / 2, (y1 - y0) / 2) if long_x else ((y1 - y0) / 2, (x1 - x0) / 2)
        ent = ents.add(raw, ((x0 + x1) / 2, (y0 + y1) / 2), 0.0 if long_x else np.pi / 2, ext,
                       spacing=spacing if strokes else 0.0,
                       tint=tuple(rng.uniform(0.97, 1.03, size=3)))
        g.add(ent, x0, x1, y0, y1, height, dash)

    X0, X1, Y = plan.x0, plan.x1, plan.y_half
    region(72, X0, X1, -Y, Y, h)  # background grass between buildings
    for side in (-1, 1):
        i = plan.side_index(side)
        a, b = KERB_Y, KERB_Y + plan.sidewalk[i]
        c = b + plan.terrain[i]
        region(48, X0, X1, *sorted((side * a, side * b)), h)
        region(72, X0, X1, *sorted((side * b, side * c)), h)
        x = X0 + rng.uniform(5, 30)
        while x < X1 - 10:  # driveways across sidewalk and grass
            w = rng.uniform(3, 5)
            if plan.clear_of_crossings(x, 2.0)[0]:
                region(49, x, x + w, *sorted((side * a, side * (c + 2.0))), h)
            x += rng.uniform(25, 60)
        region(40, X0, X1, *sorted((side * ROAD_HALF, side * KERB_Y)), 0.0)
    for side, p0, p1 in plan.parking:
        region(44, p0, p1, *sorted((side * ROAD_HALF, side * KERB_Y)), 0.0)
    for yc in LANE_CENTRES:
        region(40, X0, X1, yc - LANE_WIDTH / 2, yc + LANE_WIDTH / 2, 0.0)
    for xc in plan.crossings:
        region(40, xc - CROSS_HALF, xc + CROSS_HALF, -Y, -ROAD_HALF, 0.0)
        region(40, xc - CROSS_HALF, xc + CROSS_HALF, ROAD_HALF, Y, 0.0)
        for side in (-1, 1):
            y_in, y_out = side * KERB_Y, side * Y
            region(48, xc - CROSS_HALF - CROSS_WALK, xc - CROSS_HALF, *sorted((y_in, y_out)), h)
            region(48, xc + CROSS_HALF, xc + CROSS_HALF + CROSS_WALK, *sorted((y_in, y_out)), h)
            island0 = side * (KERB_Y + rng.uniform(4, 10))
            region(49, xc - 0.9, xc + 0.9, *sorted((island0, island0 + side * 8.0)), h)
    # lane markings (road level): dashed lane dividers, solid centre line and edge lines
    for yc in (-LANE_WIDTH, LANE_WIDTH):
        region(60, X0, X1, yc - 0.075, yc + 0.075, 0.0, dash=(9.0, 3.0), strokes=False)
    region(60, X0, X1, -0.1, 0.1, 0.0, strokes=False)
    for side in (-1, 1):
        y_in = side * (ROAD_HALF - 0.25)
        region(60, X0, X1, *sorted((y_in, y_in + side * 0.15)), 0.0, strokes=False)
    return g
