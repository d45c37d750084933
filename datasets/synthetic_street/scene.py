"""One sequence's scene: street layout, static objects, moving agents and the ego path."""

from __future__ import annotations

import numpy as np

from .entities import Scene
from .layout import (
    CURB_HEIGHT,
    EGO_LANE_Y,
    KERB_Y,
    LANE_CENTRES,
    ROAD_HALF,
    StreetPlan,
    build_ground,
    plan_street,
)
from .objects import Builder

LIDAR_HEIGHT = 1.73
"""Height of the LiDAR above the road, metres (KITTI)."""
BIKE_Y = ROAD_HALF - 0.45
"""|y| of the bicyclists riding along the outer lane edge, metres."""


class _Slots:
    """Occupied x intervals of one strip (so parked objects never overlap)."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []

    def take(self, x0: float, x1: float) -> bool:
        if any(x0 < b and a < x1 for a, b in self.spans):
            return False
        self.spans.append((x0, x1))
        return True


def _roadside(b: Builder, plan: StreetPlan, side: int, spacing_scale: float = 1.0) -> None:
    """Buildings, fences, trees, bushes, lights, signs, bins, shelters, bikes, persons."""
    rng = b.rng
    i = plan.side_index(side)
    walk_in, walk_w = KERB_Y, float(plan.sidewalk[i])
    front = plan.frontage(side)
    x = plan.x0
    while x < plan.x1:
        length = rng.uniform(10, 30)
        if plan.clear_of_crossings(np.array([x, x + length / 2, x + length]), 1.0).all():
            setback = rng.uniform(0.5, 4.0)
            if rng.random() < 0.1:
                b.structure(x + length / 2, side * (front + 1.5), side)
            else:
                b.building(x, x + length, front + setback, side)
            if rng.random() < 0.35 and setback > 0.8:
                b.fence(x, x + length, side * (front + 0.3))
        x += length + rng.uniform(0.0, 8.0)

    def walk(start: tuple[float, float], step: tuple[float, float], margin: float):
        x = plan.x0 + rng.uniform(*start)
        while x < plan.x1:
            if plan.clear_of_crossings(x, margin)[0]:
                yield x
            x += rng.uniform(*step) * spacing_scale

    terrain_mid = side * (walk_in + walk_w + plan.terrain[i] / 2)
    for x in walk((0, 10), (5, 11), 1.5):
        b.tree(x, terrain_mid)
    for x in walk((1, 6), (2, 6), 1.0):
        b.bush(x, terrain_mid + side * rng.uniform(-0.4, 0.4))
    for x in walk((0, 20), (25, 40), 0.5):
        b.street_light(x, side * (walk_in + 0.6), side)
    for x in walk((5, 30), (30, 60), 0.5):
        b.sign(x, side * (walk_in + 0.4), 0.0 if side < 0 else np.pi)
    for x in walk((5, 40), (25, 60), 0.5):
        b.bin(x + 2.0, side * (walk_in + 0.5))
    for x in walk((5, 40), (25, 55), 0.5):
        for k in range(int(rng.integers(1, 4))):
            b.two_wheeler(11, x + 0.8 * k, side * (walk_in + walk_w - 0.9), np.pi / 2)
    for x in walk((0, 20), (10, 35), 0.5):
        b.person(30, x, side * (walk_in + walk_w * rng.uniform(0.55, 0.75)), rng.uniform(-3, 3))


def _parked(b: Builder, plan: StreetPlan, slots: dict[int, _Slots]) -> None:
    """Parked cars, trucks, buses and motorcycles in the parking strips."""
    rng = b.rng
    for side, p0, p1 in plan.parking:
        y = side * (ROAD_HALF + KERB_Y) / 2
        x = p0 + rng.uniform(0.5, 3.0)
        while x < p1 - 5:
            u = rng.random()
            length = 11.0 if u > 0.86 else 4.8
            if x + length < p1 and slots[side].take(x, x + length):
                yaw = (0.0 if rng.random() < 0.8 else np.pi) + rng.normal(0, 0.03)
                xc = x + length / 2
                if u < 0.8:
                    b.car(10, xc, y, yaw)
                elif u < 0.86:
                    b.two_wheeler(15, xc, y + side * 0.4, yaw, motor=True)
                elif u < 0.96:
                    b.truck(18, xc, y, yaw)
                else:
                    b.bus(20, xc, y, yaw)
            x += length + rng.uniform(0.8, 3.0)


def _guaranteed(b: Builder, slots: dict[int, _Slots], ego_speed: float) -> None:
    """Rare classes near the start of the ego path, so every sequence shows all of them."""
    rng = b.rng
    y_park = -(ROAD_HALF + KERB_Y) / 2
    x = rng.uniform(6, 12)
    for kind in ("motorcycle", "truck", "bus"):
        length = {"motorcycle": 2.5, "truck": 9.5, "bus": 12.5}[kind]
        if slots[-1].take(x, x + length):
            if kind == "truck":
                b.truck(18, x + length / 2, y_park, 0.0)
            elif kind == "bus":
                b.bus(20, x + length / 2, y_park, 0.0)
            else:
                b.two_wheeler(15, x + 1.0, y_park - 0.4, 0.0, motor=True)
        x += length + rng.uniform(1, 4)
    # in the ego lane, ahead of the ego at its speed (_traffic keeps that stretch free)
    b.two_wheeler(255, rng.uniform(8, 12), EGO_LANE_Y, 0.0, ego_speed, motor=True, rider=True)
    b.two_wheeler(253, rng.uniform(8, 16), -BIKE_Y, 0.0, rng.uniform(4, 6), rider=True)
    b.person(254, rng.uniform(4, 14), -(KERB_Y + 1.3), 0.0, rng.uniform(1.0, 1.6))


def _traffic(b: Builder, plan: StreetPlan, ego_speed: float) -> None:
    """Moving vehicles in the four lanes (one speed per lane so they never collide)."""
    rng = b.rng
    for yc in LANE_CENTRES:
        forward = yc < 0
        if yc == EGO_LANE_Y:
            speed = ego_speed
        elif forward:
            speed = max(3.0, ego_speed + rng.uniform(-3.0, 3.0))
        else:
            speed = rng.uniform(7.0, 13.0)
        yaw = 0.0 if forward else np.pi
        x = plan.x0 + rng.uniform(0, 30)
        while x < plan.x1:
            length = 12.0
            near_ego = -16.0 < x + length / 2 < 18.0 and yc == EGO_LANE_Y
            if not near_ego and rng.random() < 0.6:
                u, xc = rng.random(), x + length / 2
                if u < 0.8:
                    b.car(252, xc, yc, yaw, speed)
                elif u < 0.87:
                    b.two_wheeler(255, xc, yc, yaw, speed, motor=True, rider=True)
                elif u < 0.96:
                    b.truck(258, xc, yc, yaw, speed)
                else:
                    b.bus(259, xc, yc, yaw, speed)
            x += length + rng.uniform(3, 30)
    for side in (-1, 1):  # bicyclists along the lane edge, pedestrians on the sidewalks
        i = plan.side_index(side)
        for _ in range(int(rng.integers(1, 4))):
            b.two_wheeler(253, rng.uniform(plan.x0, plan.x1), side * BIKE_Y,
                          0.0 if side < 0 else np.pi, rng.uniform(4, 6.5), rider=True)
        for _ in range(int(rng.integers(4, 10))):
            yaw = 0.0 if rng.random() < 0.5 else np.pi
            b.person(254, rng.uniform(plan.x0, plan.x1),
                     side * (KERB_Y + plan.sidewalk[i] * rng.uniform(0.3, 0.45)), yaw,
                     rng.uniform(1.0, 1.7))


def build_scene(rng: np.random.Generator, n_frames: int, interval: float, max_range: float,
                spacing: float) -> Scene:
    """Generate one street with an ego path of ``n_frames`` scans ``interval`` s apart.

    Args:
        max_range: LiDAR range (m); the street extends this far beyond the path.
        spacing: spacing of the scribble strokes across ground regions (m).
    """
    ego_speed = float(rng.uniform(6.0, 10.0))
    times = np.arange(n_frames) * interval
    length = ego_speed * float(times[-1]) + 1.0
    plan = plan_street(rng, length, max_range)
    b = Builder(rng)
    ground = build_ground(plan, rng, b.ents, spacing)
    slots = {-1: _Slots(), 1: _Slots()}
    _guaranteed(b, slots, ego_speed)
    for side in (-1, 1):
        _roadside(b, plan, side)
    _parked(b, plan, slots)
    _traffic(b, plan, ego_speed)
    period, phase = rng.uniform(6, 12), rng.uniform(0, 2 * np.pi)
    w = 2 * np.pi / period
    ego_x = ego_speed * times
    ego_y = EGO_LANE_Y + 0.2 * np.sin(w * times + phase)
    ego_yaw = np.arctan2(0.2 * w * np.cos(w * times + phase), ego_speed)
    return Scene(
        entities=b.ents.arrays(),
        primitives=b.prims.arrays(),
        ground=ground.arrays(),
        ego_xy=np.stack([ego_x, ego_y], axis=1),
        ego_yaw=ego_yaw,
        curb_height=CURB_HEIGHT,
        extent=(plan.x0, plan.x1, -plan.y_half, plan.y_half),
    )
