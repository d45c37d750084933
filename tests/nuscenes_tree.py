"""A tiny nuScenes-lidarseg release for tests, in the official on-disk formats.

Its scans are the real v1.0-mini LIDAR_TOP keyframe of ``../shared/realdata/nuscenes`` (34,688
points), each frame a different random subset of it; its labels are raw lidarseg category
indices (0..31) given by a rule on the geometry (no lidarseg labels are public), written as
``_lidarseg.bin``; its JSON tables (scene, sample, sample_data, calibrated_sensor, sensor,
ego_pose, lidarseg, category) are written as the release has them. Scene names are real mini
scenes, so the official mini split (``mini_train`` / ``mini_val``) applies.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kdseg.datasets import nuscenes as nus
from tests.conftest import realdata_path

LIDAR_FILE = "n015-2018-07-24-11-22-45+0800__LIDAR_TOP__1532402927647951.pcd.bin"
#: scene -> labelled keyframes: two mini_train scenes and one mini_val scene
SCENES = {"scene-0061": 3, "scene-0553": 2, "scene-0103": 2}
IDENTITY = {"rotation": [1.0, 0.0, 0.0, 0.0], "translation": [0.0, 0.0, 0.0]}


def real_points() -> np.ndarray:
    """The real mini keyframe: ``(34688, 5)`` float32 (skips the test when it is absent)."""
    return nus.read_points(realdata_path("nuscenes", "samples", "LIDAR_TOP", LIDAR_FILE))


def raw_labels(points: np.ndarray) -> np.ndarray:
    """Raw lidarseg category indices by a rule on the geometry (ground, walls, vegetation,
    cars, a little noise and ego points)."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    r = np.hypot(x, y)
    raw = np.full(points.shape[0], 28, dtype=np.uint8)  # static.manmade
    raw[z > 1.0] = 30  # static.vegetation
    raw[(z < 0.5) & (r < 20) & (np.abs(y) > 3)] = 17  # vehicle.car
    raw[z < -1.4] = 24  # flat.driveable_surface
    raw[(z < -1.4) & (y > 6)] = 26  # flat.sidewalk
    raw[r < 2.5] = 31  # vehicle.ego (ignored)
    raw[::97] = 0  # noise (ignored)
    return raw


def write_release(
    root: Path, version: str = "v1.0-mini", scenes: dict[str, int] | None = None
) -> dict[str, list[str]]:
    """Write the release under ``root``; returns ``{scene: [sample tokens in time order]}``."""
    base = real_points()
    tables = root / version
    tables.mkdir(parents=True)
    t: dict[str, list[dict]] = {k: [] for k in nus.TABLES}
    t["sensor"].append({"token": "s-lidar", "channel": "LIDAR_TOP", "modality": "lidar"})
    t["calibrated_sensor"].append(
        {"token": "cs-lidar", "sensor_token": "s-lidar", "camera_intrinsic": [], **IDENTITY}
    )
    t["category"] = [
        {"token": f"c{i}", "name": n, "index": i, "description": ""}
        for i, n in enumerate(nus.RAW_CLASSES)
    ]
    tokens: dict[str, list[str]] = {}
    for s, (scene, count) in enumerate((scenes or SCENES).items()):
        scene_token = f"{s:032x}"
        tokens[scene] = [f"{s:016x}{k:016x}" for k in range(count)]
        t["scene"].append(
            {"token": scene_token, "name": scene, "nbr_samples": count,
             "first_sample_token": tokens[scene][0], "last_sample_token": tokens[scene][-1]}
        )  # fmt: skip
        for k, sample in enumerate(tokens[scene]):
            stamp = 1_532_402_927_647_951 + 500_000 * (10 * s + k)
            rng = np.random.default_rng(10 * s + k)
            points = base[rng.random(base.shape[0]) < 0.6 + 0.05 * k]
            name = f"samples/LIDAR_TOP/{scene}__LIDAR_TOP__{stamp}.pcd.bin"
            nus.write_points(root / name, points)
            sd, label_token = f"d{sample[1:]}", f"l{sample[1:]}"
            label = f"lidarseg/{version}/{label_token}_lidarseg.bin"
            nus.write_lidarseg(root / label, raw_labels(points))
            prev = tokens[scene][k - 1] if k else ""
            nxt = tokens[scene][k + 1] if k + 1 < count else ""
            t["sample"].append(
                {"token": sample, "timestamp": stamp, "scene_token": scene_token,
                 "prev": prev, "next": nxt}
            )  # fmt: skip
            t["ego_pose"].append({"token": f"e{sample[1:]}", "timestamp": stamp, **IDENTITY})
            t["sample_data"].append(
                {"token": sd, "sample_token": sample, "ego_pose_token": f"e{sample[1:]}",
                 "calibrated_sensor_token": "cs-lidar", "filename": name, "fileformat": "pcd",
                 "is_key_frame": True, "timestamp": stamp, "width": 0, "height": 0}
            )  # fmt: skip
            t["lidarseg"].append({"token": label_token, "sample_data_token": sd, "filename": label})
    t["lidarseg"].reverse()  # the tables do not list keyframes in time order
    for name, rows in t.items():
        (tables / f"{name}.json").write_text(json.dumps(rows))
    return tokens
