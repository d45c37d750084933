"""Static objects beside the road: lots (hedges, fences, yards, buildings), the rows along the
cross streets, street trees and the furniture on the sidewalks (world frame, metres).

Like real KITTI streets, hedges, fences, trees and facades stand close behind the sidewalk, so
they take most of the side-looking LiDAR returns and hide the far field.
"""

from __future__ import annotations

import numpy as np

from .layout import CROSS_WALK, Lot, StreetPlan
from .objects import Builder


def _spans(x0: float, x1: float, gap: tuple[float, ...]) -> list[tuple[float, float]]:
    """``[x0, x1)`` minus the optional ``gap = (g0, g1)``."""
    if not gap:
        return [(x0, x1)]
    return [(a, c) for a, c in ((x0, gap[0]), (gap[1], x1)) if c - a > 0.5]


def _between(side: int, a: float, c: float) -> tuple[float, float]:
    """Sorted world y interval of the |y| interval ``[a, c]`` on ``side``."""
    return tuple(sorted((side * a, side * c)))  # type: ignore[return-value]


def _lot(b: Builder, plan: StreetPlan, lot: Lot) -> None:
    """Boundary, yard vegetation and building of one lot."""
    rng, s = b.rng, lot.side
    f = plan.frontage(s)
    for a, c in _spans(lot.x0 + 0.2, lot.x1 - 0.2, lot.drive):
        if lot.boundary == "hedge":
            b.hedge(
                a, c, *_between(s, f + 0.1, f + 0.1 + rng.uniform(0.6, 1.3)), rng.uniform(1.0, 2.4)
            )
        elif lot.boundary == "fence":
            wall = rng.random() < 0.4
            b.wall(
                a,
                c,
                *_between(s, f + 0.1, f + (0.35 if wall else 0.15)),
                rng.uniform(0.9, 1.4) if wall else rng.uniform(1.0, 2.0),
            )
    front = f + lot.setback
    yard = (f + 1.6, front - 1.2)  # |y| range of the front yard's planting
    n_trees = {
        "house": int(rng.random() < 0.5),
        "block": 0,
        "garden": int(rng.integers(2, 5)),
        "green": int(rng.integers(2, 6)),
        "yard": int(rng.random() < 0.3),
    }[lot.kind]
    if lot.kind == "green":
        yard = (f + 1.6, f + rng.uniform(8, 20))
    if yard[1] > yard[0] + 0.5:
        for _ in range(n_trees):
            b.tree(
                rng.uniform(lot.x0 + 1, lot.x1 - 1), s * rng.uniform(*yard), big=rng.random() < 0.5
            )
        for _ in range(int(rng.integers(1, 5))):
            b.bush(rng.uniform(lot.x0 + 1, lot.x1 - 1), s * rng.uniform(*yard))
    if lot.kind == "green":
        return
    if lot.kind == "block":
        x0, x1 = lot.x0, lot.x1
        depth, height = rng.uniform(10, 18), rng.uniform(9, 22)
    else:
        margin = rng.uniform(0.3, 2.0)
        x0, x1 = lot.x0 + margin, lot.x1 - margin
        depth = rng.uniform(12, 25) if lot.kind == "yard" else rng.uniform(8, 13)
        height = rng.uniform(5, 9) if lot.kind == "yard" else rng.uniform(5, 11)
    b.block(x0, x1, *_between(s, front, front + depth), height)
    if lot.kind in ("house", "yard") and lot.boundary == "fence":  # shrubs behind the fence
        for x in np.arange(lot.x0 + 1.0, lot.x1 - 1.0, rng.uniform(1.2, 2.5)):
            if not lot.drive or not lot.drive[0] - 1.0 < x < lot.drive[1] + 1.0:
                b.bush(float(x), s * (f + rng.uniform(1.0, 1.6)))
    if lot.kind == "house" and rng.random() < 0.6:  # shrubs along the facade
        for x in np.arange(x0 + 1.0, x1 - 1.0, rng.uniform(1.5, 3.0)):
            b.bush(float(x), s * (front - 0.6))


def _cross_rows(b: Builder, plan: StreetPlan) -> None:
    """Buildings, hedges and trees lining the cross streets beyond the corner lots."""
    rng = b.rng
    for xc in plan.crossings:
        for s in (-1, 1):
            for flank in (-1, 1):
                face = xc + flank * (plan.cross_half + CROSS_WALK + 0.3)
                y = plan.frontage(s) + rng.uniform(22, 32)
                while y < plan.y_half - 15:
                    length = rng.uniform(12, 25)
                    ys = _between(s, y, y + length)
                    u = rng.random()
                    x_near, x_far = face, face + flank * rng.uniform(8, 14)
                    if u < 0.5:
                        setback = flank * rng.uniform(0.0, 5.0)
                        b.block(
                            *sorted((x_near + setback, x_far + setback)), *ys, rng.uniform(5, 15)
                        )
                    elif u < 0.8:
                        b.hedge(*sorted((x_near, x_near + flank * 1.0)), *ys, rng.uniform(1.0, 2.2))
                        for _ in range(int(rng.integers(1, 4))):
                            b.tree(
                                face + flank * rng.uniform(3, 8),
                                s * rng.uniform(y, y + length),
                                big=True,
                            )
                    else:
                        b.wall(*sorted((x_near, x_near + flank * 0.15)), *ys, rng.uniform(1.0, 2.0))
                    y += length + rng.uniform(0.5, 4.0)


def roadside(b: Builder, plan: StreetPlan, side: int) -> None:
    """Lots, street trees and sidewalk furniture on ``side``; pedestrians, parked bicycles and
    the occasional static bicyclist (a rider with a parked bicycle)."""
    rng = b.rng
    i = plan.side_index(side)
    walk_in, walk_w = plan.walk_in(side), float(plan.sidewalk[i])
    for lot in plan.lots:
        if lot.side == side:
            _lot(b, plan, lot)

    def walk(start: tuple[float, float], step: tuple[float, float], margin: float):
        x = plan.x0 + rng.uniform(*start)
        while x < plan.x1:
            if plan.clear_of_crossings(x, margin)[0]:
                yield x
            x += rng.uniform(*step)

    if plan.street_trees > 0:
        verge = float(plan.verge[i])
        y_tree = plan.kerb_y(side) + verge / 2 if verge > 0 else walk_in + 0.7
        for x in walk((0, 8), (0.8 * plan.street_trees, 1.2 * plan.street_trees), 2.0):
            b.tree(x, side * y_tree, big=rng.random() < 0.3)
            if rng.random() < 0.5:  # a shrub bed around the trunk
                b.bush(x, side * y_tree)
    for x in walk((0, 20), (25, 40), 0.5):
        b.street_light(x, side * (walk_in + 0.4), side)
    for x in walk((5, 30), (30, 60), 0.5):
        b.sign(x, side * (walk_in + 0.3), 0.0 if side < 0 else np.pi)
    for x in walk((5, 40), (25, 60), 0.5):
        b.bin(x + 2.0, side * (walk_in + 0.5))
    for x in walk((20, 120), (80, 200), 1.0):
        b.structure(x, side * (walk_in + walk_w - 0.9), side)
    for x in walk((5, 40), (30, 70), 0.5):
        for k in range(int(rng.integers(1, 4))):
            b.two_wheeler(11, x + 0.8 * k, side * (walk_in + walk_w - 0.9), np.pi / 2)
    for x in walk((10, 80), (70, 160), 0.5):
        b.parked_rider(x, side * (walk_in + walk_w * 0.62), 0.0 if side < 0 else np.pi, motor=False)
    for x in walk((0, 30), (25, 60), 0.5):
        b.person(30, x, side * (walk_in + walk_w * rng.uniform(0.6, 0.8)), rng.uniform(-3, 3))


def cross_streets(b: Builder, plan: StreetPlan) -> None:
    """Objects along the cross streets (see :func:`_cross_rows`)."""
    _cross_rows(b, plan)
