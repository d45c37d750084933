"""Geometry of the 20 VOC object classes: one part list per class, jittered per instance.

Each builder returns ``(A, parts)``: the half-width ``A`` in local units and the parts (see
:mod:`.raster` for the coordinate frame and part kinds). Classes of one family share a layout
so that shape alone does not give the class away: the five animals with legs are variations of
one quadruped (proportions, head, ears, tail), car/bus/train are boxes on wheels, bicycle and
motorbike two wheels and a frame, chair/sofa/table furniture on legs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .raster import Part

Builder = Callable[[np.random.Generator], tuple[float, list[Part]]]


def _j(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def person(rng: np.random.Generator) -> tuple[float, list[Part]]:
    spread, arm = _j(rng, 0.0, 0.18), _j(rng, -0.15, 0.25)
    parts: list[Part] = [
        ("cap", (-0.15, 0.12, -0.15 - spread, 0.95, 0.12), 1),  # legs (trousers)
        ("cap", (0.15, 0.12, 0.15 + spread, 0.95, 0.12), 1),
        ("box", (-0.3, -0.64, 0.3, 0.18, 0.1), 0),  # torso (clothes)
        ("cap", (-0.3, -0.55, -0.38 - arm, 0.1, 0.075), 0),  # arms
        ("cap", (0.3, -0.55, 0.38 + arm, 0.1, 0.075), 0),
        ("ell", (-0.38 - arm, 0.13, 0.06, 0.06, 0.0), 3),  # hands (skin)
        ("ell", (0.38 + arm, 0.13, 0.06, 0.06, 0.0), 3),
        ("ell", (0.0, -0.8, 0.14, 0.17, 0.0), 3),  # head (skin)
        ("ell", (0.0, -0.9, 0.15, _j(rng, 0.06, 0.11), 0.0), 2),  # hair
    ]
    return 0.5, parts


def _quadruped(rng: np.random.Generator, kind: str) -> tuple[float, list[Part]]:
    # body centre/size, leg top/length/thickness, head centre/radius per animal
    p = {
        "cat": (0.62, 0.27, 0.06, 0.25, 0.22),
        "dog": (0.62, 0.28, 0.08, 0.26, 0.21),
        "cow": (0.8, 0.36, 0.11, 0.24, 0.19),
        "horse": (0.68, 0.27, 0.07, 0.18, 0.14),
        "sheep": (0.7, 0.42, 0.06, 0.19, 0.17),
    }[kind]
    bu, bv, leg_t, hr, head_v = p[0] * _j(rng, 0.9, 1.1), p[1], p[2], p[3], -0.1 - p[4] * 2
    body_v = -0.1 if kind != "horse" else -0.25
    legs_top, foot = body_v + 0.5 * bv, 0.97
    rough = 0.35 if kind == "sheep" else 0.0
    parts: list[Part] = []
    for lu in (-0.7 * bu, -0.5 * bu, 0.5 * bu, 0.7 * bu):  # far legs first, darker
        far = lu in (-0.5 * bu, 0.7 * bu)
        role = 2 if (kind == "sheep" or far) else 0
        parts.append(("cap", (lu, legs_top, lu + _j(rng, -0.08, 0.08), foot, leg_t), role))
    if kind in ("cat", "dog", "horse", "cow"):  # tail
        tip = {"cat": (-bu - 0.3, body_v - 0.55), "dog": (-bu - 0.25, body_v - 0.3)}.get(
            kind, (-bu - 0.12, body_v + 0.45)
        )
        parts.append(("cap", (-bu + 0.05, body_v - 0.1, *tip, 0.05), 1 if kind != "cow" else 0))
    if kind == "cow":
        parts.append(("box", (-bu, body_v - bv, bu, body_v + bv, 0.18), 0))
    else:
        parts.append(("ell", (0.0, body_v, bu, bv, rough), 0))
    hu = bu + hr * 0.6
    if kind == "horse":  # long neck and head
        parts.append(("cap", (bu - 0.15, body_v - 0.05, hu, -0.7, 0.13), 0))
        parts.append(("cap", (hu - 0.05, -0.72, hu + 0.3, -0.5, 0.1), 0))
        parts.append(("cap", (bu - 0.25, body_v - 0.15, hu - 0.08, -0.85, 0.05), 2))  # mane
        return bu + 0.45, parts
    parts.append(("ell", (hu, head_v, hr * 1.05, hr, 0.0), 2 if kind == "sheep" else 0))
    if kind == "cat":
        for du in (-0.6, 0.4):
            e = hu + du * hr
            parts.append(("poly", (e - 0.09, head_v - 0.6 * hr, e + 0.09, head_v - 0.6 * hr,
                                   e, head_v - 1.6 * hr), 0))  # fmt: skip
    elif kind == "dog":
        parts.append(("ell", (hu + 0.8 * hr, head_v + 0.25 * hr, 0.55 * hr, 0.4 * hr, 0.0), 1))
        parts.append(("ell", (hu - 0.6 * hr, head_v + 0.3 * hr, 0.3 * hr, 0.75 * hr, 0.0), 1))
    elif kind == "cow":
        parts.append(
            ("cap", (hu - 0.5 * hr, head_v - hr, hu - 0.9 * hr, head_v - 1.5 * hr, 0.03), 3)
        )
        parts.append(("ell", (hu + 0.6 * hr, head_v + 0.5 * hr, 0.5 * hr, 0.4 * hr, 0.0), 3))
    return bu + 2 * hr, parts


def bird(rng: np.random.Generator) -> tuple[float, list[Part]]:
    flying = rng.random() < 0.35
    parts: list[Part] = [
        ("poly", (-0.4, -0.05, -0.85, -0.3, -0.85, 0.15), 1),  # tail
        ("ell", (0.0, 0.0, 0.5, 0.3, 0.0), 0),
        ("ell", (0.45, -0.35, 0.2, 0.2, 0.0), 0),
        ("poly", (0.6, -0.42, 0.85, -0.33, 0.6, -0.26), 3),  # beak
    ]
    if flying:
        parts.append(("poly", (-0.25, -0.1, 0.2, -0.1, -0.2, -0.95, -0.6, -0.8), 1))
    else:
        parts.insert(0, ("cap", (0.0, 0.25, 0.05, 0.9, 0.03), 2))  # legs
        parts.append(("ell", (-0.08, -0.02, 0.36, 0.18, 0.0), 1))  # folded wing
    return 0.9, parts


def aeroplane(rng: np.random.Generator) -> tuple[float, list[Part]]:
    sweep = _j(rng, 0.2, 0.6)
    parts: list[Part] = [
        ("poly", (-0.2, -0.05, 0.25, -0.05, -0.1 - sweep, -0.75, -0.35 - sweep, -0.75), 1),
        ("ell", (0.0, 0.0, 1.9, 0.22, 0.0), 0),  # fuselage
        ("poly", (-1.9, 0.0, -1.4, 0.0, -1.75, -0.95, -1.95, -0.95), 1),  # fin
        ("box", (-1.4, -0.09, 1.4, -0.03, 0.0), 2),  # window line
        ("poly", (-0.3, 0.05, 0.35, 0.05, -0.3 - sweep, 0.95, -0.65 - sweep, 0.95), 0),  # wing
        ("ell", (-0.15 - sweep / 2, 0.5, 0.22, 0.09, 0.0), 2),  # engine
    ]
    return 2.0, parts


def _two_wheels(motor: bool) -> list[Part]:
    r_in = 0.32 if motor else 0.47
    return [("ring", (-0.95, 0.45, 0.55, r_in), 2), ("ring", (0.95, 0.45, 0.55, r_in), 2)]


def bicycle(rng: np.random.Generator) -> tuple[float, list[Part]]:
    seat, head = (-0.35, -0.35), (0.65, _j(rng, -0.45, -0.3))
    hubs, crank, t = ((-0.95, 0.45), (0.95, 0.45)), (-0.1, 0.45), 0.055
    parts = _two_wheels(False)
    for a, b in ((hubs[0], crank), (hubs[0], seat), (seat, crank), (seat, head), (head, crank),
                 (head, hubs[1])):  # fmt: skip
        parts.append(("cap", (*a, *b, t), 0))
    parts.append(("box", (-0.52, -0.5, -0.18, -0.38, 0.05), 2))  # saddle
    parts.append(("cap", (head[0], head[1], head[0] + 0.15, head[1] - 0.25, 0.045), 2))
    return 1.5, parts


def motorbike(rng: np.random.Generator) -> tuple[float, list[Part]]:
    parts = _two_wheels(True)
    parts += [
        ("ell", (-0.95, 0.45, 0.14, 0.14, 0.0), 3),
        ("ell", (0.95, 0.45, 0.14, 0.14, 0.0), 3),
        ("cap", (0.7, -0.55, 0.95, 0.45, 0.07), 3),  # fork
        ("box", (-0.25, -0.05, 0.35, 0.45, 0.08), 3),  # engine
        ("ell", (0.0, -0.1, 0.65, _j(rng, 0.25, 0.35), 0.0), 0),  # body
        ("ell", (0.25, -0.35, 0.35, 0.15, 0.0), 0),  # tank
        ("box", (-0.65, -0.45, 0.0, -0.3, 0.06), 2),  # seat
        ("cap", (0.62, -0.6, 0.78, -0.8, 0.05), 2),  # handlebar
    ]
    return 1.5, parts


def boat(rng: np.random.Generator) -> tuple[float, list[Part]]:
    parts: list[Part] = [
        ("poly", (-1.4, 0.1, 1.4, 0.1, 1.05, 0.75, -1.1, 0.75), 0),  # hull
        ("box", (-1.35, 0.1, 1.35, 0.22, 0.0), 1),
    ]
    if rng.random() < 0.5:  # sail boat
        parts += [
            ("cap", (0.0, -1.0, 0.0, 0.1, 0.035), 2),
            ("poly", (0.05, -0.95, 0.05, 0.02, 0.95, 0.02), 3),
        ]
    else:  # cabin
        parts += [
            ("box", (-0.6, -0.4, 0.4, 0.1, 0.05), 3),
            ("box", (-0.45, -0.3, 0.25, -0.12, 0.0), 2),
        ]
    return 1.4, parts


def bottle(rng: np.random.Generator) -> tuple[float, list[Part]]:
    w = _j(rng, 0.24, 0.34)
    parts: list[Part] = [
        ("box", (-w, -0.25, w, 1.0, 0.08), 0),
        ("ell", (0.0, -0.25, w, 0.2, 0.0), 0),
        ("box", (-0.1, -0.85, 0.1, -0.3, 0.02), 0),  # neck
        ("box", (-0.12, -1.0, 0.12, -0.85, 0.02), 2),  # cap
    ]
    if rng.random() < 0.7:
        parts.append(("box", (-w, 0.15, w, 0.6, 0.0), 1))  # label
    parts.append(("box", (-0.7 * w, -0.15, -0.45 * w, 0.9, 0.0), 3))  # highlight
    return w, parts


def _windows(u0: float, u1: float, v0: float, v1: float, n: int) -> list[Part]:
    step = (u1 - u0) / n
    return [("box", (u0 + k * step + 0.05, v0, u0 + (k + 1) * step - 0.05, v1, 0.03), 2)
            for k in range(n)]  # fmt: skip


def bus(rng: np.random.Generator) -> tuple[float, list[Part]]:
    a = _j(rng, 1.4, 1.9)
    parts: list[Part] = [
        ("box", (-a, -0.95, a, 0.75, 0.12), 0),
        ("box", (-a, 0.3, a, 0.45, 0.0), 1),
    ]
    parts += _windows(-a + 0.1, a - 0.1, -0.75, -0.15, round(a * 2.5))
    parts += [
        ("ell", (-a + 0.5, 0.78, 0.22, 0.22, 0.0), 2),
        ("ell", (a - 0.5, 0.78, 0.22, 0.22, 0.0), 2),
    ]
    return a, parts


def car(rng: np.random.Generator) -> tuple[float, list[Part]]:
    top = _j(rng, -0.8, -0.6)
    parts: list[Part] = [
        ("poly", (-1.1, -0.1, 1.0, -0.1, 0.6, top, -0.75, top), 0),  # cabin
        ("poly", (-0.95, -0.15, 0.85, -0.15, 0.55, top + 0.1, -0.68, top + 0.1), 2),  # glass
        ("box", (-1.9, -0.15, 1.9, 0.55, 0.15), 0),
        ("ell", (1.75, 0.05, 0.1, 0.08, 0.0), 3),  # light
    ]
    for wu in (-1.15, 1.15):
        parts += [("ell", (wu, 0.6, 0.33, 0.33, 0.0), 2), ("ell", (wu, 0.6, 0.14, 0.14, 0.0), 3)]
    return 1.9, parts


def train(rng: np.random.Generator) -> tuple[float, list[Part]]:
    a = _j(rng, 2.5, 3.5)
    parts: list[Part] = [("box", (-a, -0.9, a, 0.75, 0.15), 0), ("box", (-a, 0.1, a, 0.3, 0.0), 1)]
    parts += _windows(-a + 0.1, a - 0.5, -0.7, -0.2, round(a * 2.0))
    parts.append(("box", (a - 0.4, -0.7, a - 0.08, -0.2, 0.05), 3))  # cab window
    parts += [("ell", (u, 0.82, 0.12, 0.12, 0.0), 2) for u in np.linspace(-a + 0.4, a - 0.4, 6)]
    return a, parts


def chair(rng: np.random.Generator) -> tuple[float, list[Part]]:
    t = _j(rng, 0.045, 0.07)
    parts: list[Part] = [
        ("cap", (-0.42, -1.0, -0.45, 0.95, t), 0),  # back posts become back legs
        ("cap", (0.42, -1.0, 0.45, 0.95, t), 0),
        ("box", (-0.45, -0.98, 0.45, -0.72, 0.03), 0),
        ("box", (-0.45, -0.55, 0.45, -0.42, 0.02), 0),
        ("cap", (-0.3, 0.1, -0.34, 1.0, t), 0),  # front legs
        ("cap", (0.3, 0.1, 0.34, 1.0, t), 0),
        ("poly", (-0.55, -0.05, 0.55, -0.05, 0.5, 0.13, -0.5, 0.13), 0),  # seat
    ]
    if rng.random() < 0.5:
        parts.append(("poly", (-0.5, -0.1, 0.5, -0.1, 0.46, 0.03, -0.46, 0.03), 1))  # cushion
    return 0.6, parts


def diningtable(rng: np.random.Generator) -> tuple[float, list[Part]]:
    parts: list[Part] = [
        ("cap", (-1.15, -0.5, -1.15, 0.75, 0.05), 1),  # back legs
        ("cap", (1.15, -0.5, 1.15, 0.75, 0.05), 1),
        ("cap", (-1.4, -0.25, -1.4, 1.0, 0.08), 0),
        ("cap", (1.4, -0.25, 1.4, 1.0, 0.08), 0),
        ("poly", (-1.45, -0.6, 1.45, -0.6, 1.6, -0.33, -1.6, -0.33), 0),  # top
        ("box", (-1.6, -0.34, 1.6, -0.22, 0.0), 1),  # edge
    ]
    if rng.random() < 0.35:  # table cloth
        parts += [("poly", (-1.45, -0.6, 1.45, -0.6, 1.6, -0.33, -1.6, -0.33), 3),
                  ("box", (-1.6, -0.34, 1.6, _j(rng, 0.0, 0.3), 0.0), 3)]  # fmt: skip
    return 1.6, parts


def pottedplant(rng: np.random.Generator) -> tuple[float, list[Part]]:
    parts: list[Part] = []
    for _ in range(int(rng.integers(5, 9))):  # foliage
        cu, cv, r = _j(rng, -0.4, 0.4), _j(rng, -0.7, 0.0), _j(rng, 0.2, 0.4)
        parts.append(("ell", (cu, cv, r, r * _j(rng, 0.6, 1.0), 0.5), 0))
    parts += [
        ("poly", (-0.38, 0.3, 0.38, 0.3, 0.27, 1.0, -0.27, 1.0), 1),  # pot
        ("box", (-0.43, 0.24, 0.43, 0.37, 0.02), 1),
    ]
    return 0.75, parts


def sofa(rng: np.random.Generator) -> tuple[float, list[Part]]:
    a = _j(rng, 1.5, 2.0)
    parts: list[Part] = [
        ("box", (-a + 0.2, -0.9, a - 0.2, 0.0, 0.2), 0),  # back
        ("box", (-a + 0.2, -0.2, a - 0.2, 0.6, 0.1), 0),  # seat
        ("box", (-a + 0.3, -0.18, -0.03, 0.15, 0.08), 1),  # cushions
        ("box", (0.03, -0.18, a - 0.3, 0.15, 0.08), 1),
        ("box", (-a, -0.5, -a + 0.4, 0.7, 0.18), 0),  # arms
        ("box", (a - 0.4, -0.5, a, 0.7, 0.18), 0),
        ("box", (-a + 0.2, 0.7, -a + 0.35, 0.9, 0.02), 2),  # feet
        ("box", (a - 0.35, 0.7, a - 0.2, 0.9, 0.02), 2),
    ]
    return a, parts


def tvmonitor(rng: np.random.Generator) -> tuple[float, list[Part]]:
    a = _j(rng, 0.65, 0.95)
    parts: list[Part] = [
        ("box", (-0.08, 0.5, 0.08, 0.82, 0.0), 2),  # stand
        ("box", (-0.4, 0.8, 0.4, 0.95, 0.03), 2),
        ("box", (-a, -0.9, a, 0.55, 0.04), 2),  # frame
        ("box", (-a + 0.08, -0.8, a - 0.08, 0.45, 0.0), 3),  # screen
    ]
    return a, parts


TEMPLATES: dict[int, Builder] = {
    1: aeroplane, 2: bicycle, 3: bird, 4: boat, 5: bottle, 6: bus, 7: car,
    8: lambda rng: _quadruped(rng, "cat"), 9: chair, 10: lambda rng: _quadruped(rng, "cow"),
    11: diningtable, 12: lambda rng: _quadruped(rng, "dog"),
    13: lambda rng: _quadruped(rng, "horse"), 14: motorbike, 15: person, 16: pottedplant,
    17: lambda rng: _quadruped(rng, "sheep"), 18: sofa, 19: train, 20: tvmonitor,
}  # fmt: skip
"""VOC label id -> geometry builder."""
