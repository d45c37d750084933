"""One sequence's scene: street layout, static objects, moving agents and the ego path."""

from __future__ import annotations

import numpy as np

from .entities import Scene
from .frontage import cross_streets, roadside
from .layout import BAY_WIDTH, CURB_HEIGHT, StreetPlan, build_ground, plan_street
from .objects import Builder

LIDAR_HEIGHT = 1.73
"""Height of the LiDAR above the road, metres (KITTI)."""


def _bike_y(plan: StreetPlan) -> float:
    """|y| of the bicyclists riding along the outer edge of a lane (clear of cars), metres."""
    return plan.lane / 2 + 1.25


class _Slots:
    """Occupied x intervals of one strip (so parked objects never overlap)."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []

    def take(self, x0: float, x1: float) -> bool:
        if any(x0 < b and a < x1 for a, b in self.spans):
            return False
        self.spans.append((x0, x1))
        return True


def _parked(b: Builder, plan: StreetPlan, slots: dict[int, _Slots]) -> None:
    """Parked cars (mostly), motorcycles, a few trucks and buses in the parking strips."""
    rng = b.rng
    for side, p0, p1, _ in plan.parking:
        y = side * plan.park_y(side)
        x = p0 + rng.uniform(0.5, 3.0)
        while x < p1 - 5:
            u = rng.random()
            length = 11.0 if u > 0.96 else 4.8
            if x + length < p1 and slots[side].take(x, x + length):
                yaw = (0.0 if rng.random() < 0.8 else np.pi) + rng.normal(0, 0.03)
                xc = x + length / 2
                if u < 0.91:
                    b.car(10, xc, y, yaw)
                elif u < 0.96:
                    if rng.random() < 0.4:  # a motorcyclist on or beside the parked machine
                        b.parked_rider(xc, y + side * 0.3, yaw, motor=True)
                    else:
                        b.two_wheeler(15, xc, y + side * 0.4, yaw, motor=True)
                elif u < 0.982:
                    b.truck(18, xc, y, yaw)
                else:
                    b.bus(20, xc, y, yaw)
            x += length + rng.uniform(0.8, 3.0)


def _guaranteed(b: Builder, plan: StreetPlan, slots: dict[int, _Slots], ego_speed: float) -> None:
    """Rare classes ahead of the start of the ego path, so every sequence shows all of them.

    The truck and the bus stand in the lay-by on the far side, 15-30 m beyond the end of the ego
    path (seen from afar only), as large vehicles are rare in KITTI streets.
    """
    rng = b.rng
    x = rng.uniform(6, 12)
    if plan.park[0] > 0 and slots[-1].take(x, x + 2.5):
        b.two_wheeler(15, x + 1.0, -plan.park_y(-1) - 0.4, 0.0, motor=True)
    elif plan.park[0] == 0:  # parked on the sidewalk, next to the kerb
        b.two_wheeler(15, x + 1.0, -(plan.walk_in(-1) + 0.6), 0.0, motor=True)
    x = plan.bay[0] + rng.uniform(0.5, 2.0)
    y_bay = plan.road_half + BAY_WIDTH / 2
    for kind in ("truck", "bus"):
        length = {"truck": 9.5, "bus": 12.5}[kind]
        slots[1].take(x, x + length)
        if kind == "truck":
            b.truck(18, x + length / 2, y_bay, np.pi)
        else:
            b.bus(20, x + length / 2, y_bay, np.pi)
        x += length + rng.uniform(0.5, 1.5)
    # in the ego lane, ahead of the ego at its speed (_traffic keeps that stretch free)
    b.two_wheeler(255, rng.uniform(8, 12), plan.ego_lane_y, 0.0, ego_speed, motor=True, rider=True)
    b.two_wheeler(253, rng.uniform(8, 16), -_bike_y(plan), 0.0, rng.uniform(4, 6), rider=True)
    b.person(254, rng.uniform(4, 14), -(plan.walk_in(-1) + 0.5), 0.0, rng.uniform(1.0, 1.6))


def _traffic(b: Builder, plan: StreetPlan, ego_speed: float) -> None:
    """Moving vehicles in the two lanes (one speed per lane so they never collide)."""
    rng = b.rng
    for yc in plan.lane_centres:
        forward = yc < 0
        speed = ego_speed if forward else rng.uniform(7.0, 13.0)
        yaw = 0.0 if forward else np.pi
        x = plan.x0 + rng.uniform(0, 30)
        while x < plan.x1:
            length = 12.0
            near_ego = -16.0 < x + length / 2 < 18.0 and forward
            if not near_ego and rng.random() < 0.5:
                u, xc = rng.random(), x + length / 2
                if u < 0.92:
                    b.car(252, xc, yc, yaw, speed)
                elif u < 0.96:
                    b.two_wheeler(255, xc, yc, yaw, speed, motor=True, rider=True)
                elif u < 0.99:
                    b.truck(258, xc, yc, yaw, speed)
                else:
                    b.bus(259, xc, yc, yaw, speed)
            x += length + rng.uniform(5, 40)
    for side in (-1, 1):  # bicyclists along the lane edge, pedestrians on the sidewalks
        i = plan.side_index(side)
        for _ in range(int(rng.integers(0, 3))):
            b.two_wheeler(
                253,
                rng.uniform(plan.x0, plan.x1),
                side * _bike_y(plan),
                0.0 if side < 0 else np.pi,
                rng.uniform(4, 6.5),
                rider=True,
            )
        for _ in range(int(rng.integers(2, 6))):
            yaw = 0.0 if rng.random() < 0.5 else np.pi
            b.person(
                254,
                rng.uniform(plan.x0, plan.x1),
                side * (plan.walk_in(side) + plan.sidewalk[i] * rng.uniform(0.25, 0.4)),
                yaw,
                rng.uniform(1.0, 1.7),
            )


def build_scene(
    rng: np.random.Generator, n_frames: int, interval: float, max_range: float, spacing: float
) -> Scene:
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
    _guaranteed(b, plan, slots, ego_speed)
    for side in (-1, 1):
        roadside(b, plan, side)
    cross_streets(b, plan)
    _parked(b, plan, slots)
    _traffic(b, plan, ego_speed)
    period, phase = rng.uniform(6, 12), rng.uniform(0, 2 * np.pi)
    w = 2 * np.pi / period
    ego_x = ego_speed * times
    ego_y = plan.ego_lane_y + 0.2 * np.sin(w * times + phase)
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
