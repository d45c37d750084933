"""SemanticKITTI label definitions (semantic-kitti-api ``config/semantic-kitti.yaml``).

Raw ids are the values stored in ``.label`` files (low 16 bits). The official ``learning_map``
sends them to ``0..19`` with 0 = unlabeled; kdseg then uses train ids ``0..18`` (official id - 1)
and :data:`kdseg.IGNORE_INDEX` for the official 0. Colours are given as RGB here (the yaml
stores BGR).
"""

from __future__ import annotations

import numpy as np

from kdseg import IGNORE_INDEX

#: raw id -> name (the yaml's ``labels``)
RAW_NAMES: dict[int, str] = {
    0: "unlabeled",
    1: "outlier",
    10: "car",
    11: "bicycle",
    13: "bus",
    15: "motorcycle",
    16: "on-rails",
    18: "truck",
    20: "other-vehicle",
    30: "person",
    31: "bicyclist",
    32: "motorcyclist",
    40: "road",
    44: "parking",
    48: "sidewalk",
    49: "other-ground",
    50: "building",
    51: "fence",
    52: "other-structure",
    60: "lane-marking",
    70: "vegetation",
    71: "trunk",
    72: "terrain",
    80: "pole",
    81: "traffic-sign",
    99: "other-object",
    252: "moving-car",
    253: "moving-bicyclist",
    254: "moving-person",
    255: "moving-motorcyclist",
    256: "moving-on-rails",
    257: "moving-bus",
    258: "moving-truck",
    259: "moving-other-vehicle",
}

#: raw id -> official learning id (0 = unlabeled/ignored, 1..19 classes)
LEARNING_MAP: dict[int, int] = {
    0: 0,
    1: 0,
    10: 1,
    11: 2,
    13: 5,
    15: 3,
    16: 5,
    18: 4,
    20: 5,
    30: 6,
    31: 7,
    32: 8,
    40: 9,
    44: 10,
    48: 11,
    49: 12,
    50: 13,
    51: 14,
    52: 0,
    60: 9,
    70: 15,
    71: 16,
    72: 17,
    80: 18,
    81: 19,
    99: 0,
    252: 1,
    253: 7,
    254: 6,
    255: 8,
    256: 5,
    257: 5,
    258: 4,
    259: 5,
}

#: official learning id -> raw id (``learning_map_inv``)
LEARNING_MAP_INV: dict[int, int] = {
    0: 0,
    1: 10,
    2: 11,
    3: 15,
    4: 18,
    5: 20,
    6: 30,
    7: 31,
    8: 32,
    9: 40,
    10: 44,
    11: 48,
    12: 49,
    13: 50,
    14: 51,
    15: 70,
    16: 71,
    17: 72,
    18: 80,
    19: 81,
}

#: kdseg train id -> class name (19 classes)
CLASS_NAMES: tuple[str, ...] = (
    "car",
    "bicycle",
    "motorcycle",
    "truck",
    "other-vehicle",
    "person",
    "bicyclist",
    "motorcyclist",
    "road",
    "parking",
    "sidewalk",
    "other-ground",
    "building",
    "fence",
    "vegetation",
    "trunk",
    "terrain",
    "pole",
    "traffic-sign",
)
NUM_CLASSES: int = len(CLASS_NAMES)

#: kdseg train id -> RGB colour (the yaml's BGR ``color_map`` of the inverse raw id, reversed)
CLASS_COLORS_RGB: np.ndarray = np.array(
    [
        (100, 150, 245),
        (100, 230, 245),
        (30, 60, 150),
        (80, 30, 180),
        (0, 0, 255),
        (255, 30, 30),
        (255, 40, 200),
        (150, 30, 90),
        (255, 0, 255),
        (255, 150, 255),
        (75, 0, 75),
        (175, 0, 75),
        (255, 200, 0),
        (255, 120, 50),
        (0, 175, 0),
        (135, 60, 0),
        (150, 240, 80),
        (255, 240, 150),
        (255, 0, 0),
    ],
    dtype=np.uint8,
)

#: raw ids of the moving classes (the multi-scan task keeps them apart)
MOVING_RAW_IDS: frozenset[int] = frozenset({252, 253, 254, 255, 256, 257, 258, 259})

#: train ids of "thing" classes (instances are meaningful): car .. motorcyclist
THING_TRAIN_IDS: frozenset[int] = frozenset(range(8))


def _build_lut() -> np.ndarray:
    lut = np.full(1 << 16, -1, dtype=np.int32)
    for raw, learn in LEARNING_MAP.items():
        lut[raw] = IGNORE_INDEX if learn == 0 else learn - 1
    return lut


#: raw id (0..65535) -> train id, -1 for ids that are not in the official map
RAW_TO_TRAIN_LUT: np.ndarray = _build_lut()

#: train id -> canonical raw id (``learning_map_inv``)
TRAIN_TO_RAW: np.ndarray = np.array(
    [LEARNING_MAP_INV[i + 1] for i in range(NUM_CLASSES)], np.uint16
)


def unknown_raw_ids(raw: np.ndarray) -> np.ndarray:
    """Sorted raw ids in ``raw`` that the official ``learning_map`` does not know."""
    values = np.unique(raw)
    return values[RAW_TO_TRAIN_LUT[values.astype(np.int64)] < 0]


def raw_to_train(raw: np.ndarray) -> np.ndarray:
    """Map raw ids ``(N,)`` (uint16/uint32) to train ids ``(N,)`` int64 (ignore = 255).

    Raises ``ValueError`` listing the unknown ids; readers wrap it with the file name.
    """
    raw = np.asarray(raw)
    if raw.size and int(raw.max()) > 0xFFFF:
        raise ValueError(f"raw ids must fit in 16 bits, max is {int(raw.max())}")
    train = RAW_TO_TRAIN_LUT[raw.astype(np.int64)]
    if raw.size and int(train.min()) < 0:
        raise ValueError(f"unknown raw label ids {unknown_raw_ids(raw).tolist()}")
    return train.astype(np.int64)
