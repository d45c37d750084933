"""Reader for nuScenes with nuScenes-lidarseg labels (no nuscenes-devkit: it pins numpy < 2).

Layout under the data root (``shared/specs/datasets.md`` §3)::

    samples/LIDAR_TOP/<log>__LIDAR_TOP__<us>.pcd.bin  float32 (N, 5): x, y, z (m, LiDAR frame),
                                                      intensity, ring index 0..31 (HDL-32E)
    samples/CAM_{FRONT,FRONT_LEFT,...}/<...>.jpg      1600 x 900 RGB
    lidarseg/<version>/<token>_lidarseg.bin           uint8 (N,): category ``index`` 0..31 per point
    <version>/{sample,sample_data,calibrated_sensor,sensor,ego_pose,scene,lidarseg,category}.json

Calibration: ``calibrated_sensor`` gives sensor -> ego (``rotation`` as a w, x, y, z quaternion,
``translation`` in metres, ``camera_intrinsic`` 3x3), ``ego_pose`` ego -> global at the sensor's
timestamp. LiDAR -> camera = inv(cam2ego) . inv(ego2global_cam) . ego2global_lidar . lidar2ego
(the two ego poses differ because camera and LiDAR fire at different times).

Labels: the 32 raw categories map to the 16 lidarseg classes (Cylinder3D / devkit evaluation
map); kdseg's train ids are those class ids minus one (0..15) with 255 = ignore.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kdseg.errors import DataFormatError
from kdseg.geometry import Projection, project_points
from kdseg.io import atomic_open

RAW_CLASSES: tuple[str, ...] = (
    "noise", "animal", "human.pedestrian.adult", "human.pedestrian.child",
    "human.pedestrian.construction_worker", "human.pedestrian.personal_mobility",
    "human.pedestrian.police_officer", "human.pedestrian.stroller",
    "human.pedestrian.wheelchair", "movable_object.barrier", "movable_object.debris",
    "movable_object.pushable_pullable", "movable_object.trafficcone",
    "static_object.bicycle_rack", "vehicle.bicycle", "vehicle.bus.bendy", "vehicle.bus.rigid",
    "vehicle.car", "vehicle.construction", "vehicle.emergency.ambulance",
    "vehicle.emergency.police", "vehicle.motorcycle", "vehicle.trailer", "vehicle.truck",
    "flat.driveable_surface", "flat.other", "flat.sidewalk", "flat.terrain", "static.manmade",
    "static.other", "static.vegetation", "vehicle.ego",
)  # fmt: skip
CLASSES: tuple[str, ...] = (
    "barrier", "bicycle", "bus", "car", "construction_vehicle", "motorcycle", "pedestrian",
    "traffic_cone", "trailer", "truck", "driveable_surface", "other_flat", "sidewalk", "terrain",
    "manmade", "vegetation",
)  # fmt: skip
# raw index -> lidarseg class id 1..16 (0 = ignored); spec §3
_RAW_TO_CLASS = {
    2: 7, 3: 7, 4: 7, 6: 7, 9: 1, 12: 8, 14: 2, 15: 3, 16: 3, 17: 4, 18: 5, 21: 6, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 30: 16,
}  # fmt: skip
RAW_TO_TRAIN = np.full(256, 255, dtype=np.uint8)  # (256,) raw index -> train id, 255 = ignore
for _raw, _cls in _RAW_TO_CLASS.items():
    RAW_TO_TRAIN[_raw] = _cls - 1
NUM_RINGS = 32
CAMERAS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT",
           "CAM_FRONT_LEFT")  # fmt: skip
TABLES = ("sample", "sample_data", "calibrated_sensor", "sensor", "ego_pose", "scene",
          "lidarseg", "category")  # fmt: skip


# ------------------------------------------------------------------------------ point files
def read_points(path: str | Path) -> np.ndarray:
    """Read a ``.pcd.bin`` scan: ``(N, 5)`` float32 x, y, z (m), intensity, ring (0..31)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "lidar file does not exist")
    size = path.stat().st_size
    if size % 20:
        raise DataFormatError(path, f"size {size} bytes is not a multiple of 20 (5 float32/point)")
    points = np.fromfile(path, dtype="<f4").reshape(-1, 5)
    if not np.isfinite(points).all():
        raise DataFormatError(path, "points hold NaN or inf values")
    ring = points[:, 4]
    if points.shape[0] and (ring.min() < 0 or ring.max() >= NUM_RINGS or (ring % 1).any()):
        raise DataFormatError(path, f"ring column must hold integers 0..{NUM_RINGS - 1}")
    return points


def write_points(path: str | Path, points: np.ndarray) -> None:
    """Atomically write ``(N, 5)`` points as a little-endian float32 ``.pcd.bin``."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 5:
        raise ValueError(f"points must be (N, 5), got {points.shape}")
    with atomic_open(path, "wb") as fh:
        fh.write(np.ascontiguousarray(points, dtype="<f4").tobytes())


# ------------------------------------------------------------------------------ label files
def read_lidarseg(path: str | Path, num_points: int | None = None) -> np.ndarray:
    """Read a ``_lidarseg.bin``: ``(N,)`` uint8 raw category indices 0..31.

    Args:
        num_points: points of the matching scan; a different label count is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "lidarseg label file does not exist")
    raw = np.fromfile(path, dtype=np.uint8)
    if num_points is not None and raw.shape[0] != num_points:
        raise DataFormatError(
            path, f"has {raw.shape[0]} labels but the scan has {num_points} points"
        )
    unknown = np.unique(raw[raw >= len(RAW_CLASSES)])
    if unknown.size:
        shown = unknown[:8].tolist()
        raise DataFormatError(
            path, f"unknown category indices {shown} (lidarseg has 0..{len(RAW_CLASSES) - 1})"
        )
    return raw


def write_lidarseg(path: str | Path, raw: np.ndarray) -> None:
    """Atomically write ``(N,)`` raw category indices (0..31) as a uint8 ``_lidarseg.bin``."""
    raw = np.asarray(raw)
    if raw.ndim != 1 or (raw.size and (raw.min() < 0 or raw.max() >= len(RAW_CLASSES))):
        raise ValueError("raw lidarseg labels must be (N,) integers in 0..31")
    with atomic_open(path, "wb") as fh:
        fh.write(raw.astype(np.uint8).tobytes())


def lidarseg_to_train(raw: np.ndarray) -> np.ndarray:
    """``(N,)`` raw indices -> ``(N,)`` uint8 train ids 0..15 (255 = ignore)."""
    return RAW_TO_TRAIN[np.asarray(raw, dtype=np.uint8)]


# ------------------------------------------------------------------------------ geometry
def quaternion_matrix(path: Path, q: Any) -> np.ndarray:
    """``(3, 3)`` rotation of a unit quaternion given as ``[w, x, y, z]`` (nuScenes order)."""
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (4,) or abs(np.linalg.norm(q) - 1.0) > 1e-3:
        raise DataFormatError(path, f"rotation must be a unit quaternion [w, x, y, z], got {q}")
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def pose_matrix(path: Path, record: dict[str, Any]) -> np.ndarray:
    """``(4, 4)`` transform of a calibrated_sensor / ego_pose record (rotation, translation)."""
    try:
        T = np.eye(4)
        T[:3, :3] = quaternion_matrix(path, record["rotation"])
        T[:3, 3] = np.asarray(record["translation"], dtype=np.float64).reshape(3)
    except (KeyError, ValueError, TypeError) as exc:
        raise DataFormatError(path, f"record {record.get('token')}: bad pose ({exc})") from None
    return T


def lidar_to_camera(
    lidar2ego: np.ndarray,
    ego2global_lidar: np.ndarray,
    cam2ego: np.ndarray,
    ego2global_cam: np.ndarray,
) -> np.ndarray:
    """``(4, 4)`` LiDAR -> camera frame (all inputs ``(4, 4)``):
    ``inv(cam2ego) . inv(ego2global_cam) . ego2global_lidar . lidar2ego``."""
    return np.linalg.inv(cam2ego) @ np.linalg.inv(ego2global_cam) @ ego2global_lidar @ lidar2ego


@dataclass(frozen=True)
class Camera:
    """One camera of a keyframe: ``intrinsic`` (3, 3), ``lidar2cam`` (4, 4), ``size`` (w, h)."""

    channel: str
    image_path: Path
    intrinsic: np.ndarray
    lidar2cam: np.ndarray
    size: tuple[int, int]

    @property
    def P(self) -> np.ndarray:
        """``(3, 4)`` projection ``[K | 0]`` of the camera frame, for ``project_points``."""
        return np.hstack([self.intrinsic, np.zeros((3, 1))])

    def project(self, points: np.ndarray) -> Projection:
        """Project ``(N, >=3)`` LiDAR-frame points with kdseg's one projection function."""
        return project_points(points[:, :3], self.P, self.lidar2cam, self.size)

    def read_image(self) -> np.ndarray:
        from kdseg.datasets.semantickitti import read_image

        return read_image(self.image_path)


@dataclass
class Keyframe:
    """A labelled nuScenes sample: ``points`` (N, 5), ``labels`` (N,) train ids or None,
    ``raw_labels`` (N,) category indices or None, poses (4, 4), cameras by channel."""

    sample_token: str
    scene: str
    lidar_path: Path
    points: np.ndarray
    raw_labels: np.ndarray | None
    labels: np.ndarray | None
    lidar2ego: np.ndarray
    ego2global: np.ndarray
    cameras: dict[str, Camera]


class NuScenes:
    """The JSON tables of one release (``version``, e.g. ``"v1.0-mini"``) under ``root``."""

    def __init__(self, root: str | Path, version: str = "v1.0-mini") -> None:
        self.root, self.version = Path(root), version
        self.table_dir = self.root / version
        if not self.table_dir.is_dir():
            raise DataFormatError(self.table_dir, "nuScenes table folder does not exist")
        self._tables: dict[str, dict[str, dict[str, Any]]] = {}
        self._check_categories()
        sensors = self.table("sensor")
        self._channel = {
            cs["token"]: sensors[cs["sensor_token"]]["channel"]
            for cs in self.table("calibrated_sensor").values()
        }
        self._keyframe_data: dict[str, dict[str, dict[str, Any]]] = {}
        for sd in self.table("sample_data").values():
            if sd.get("is_key_frame"):
                channel = self._channel.get(sd["calibrated_sensor_token"])
                self._keyframe_data.setdefault(sd["sample_token"], {})[channel] = sd
        self._labels = {e["sample_data_token"]: e for e in self.table("lidarseg").values()}

    def table(self, name: str) -> dict[str, dict[str, Any]]:
        """Records of ``<version>/<name>.json`` by token."""
        if name not in self._tables:
            path = self.table_dir / f"{name}.json"
            if not path.is_file():
                raise DataFormatError(path, "nuScenes table does not exist")
            try:
                rows = json.loads(path.read_text())
                self._tables[name] = {r["token"]: r for r in rows}
            except (ValueError, TypeError, KeyError) as exc:
                raise DataFormatError(
                    path, f"not a nuScenes table (list of records): {exc}"
                ) from None
        return self._tables[name]

    def _check_categories(self) -> None:
        path = self.table_dir / "category.json"
        cats = self.table("category").values()
        if any("index" not in c for c in cats):
            raise DataFormatError(
                path, "categories have no 'index': extract the lidarseg archive over the release"
            )
        names = {int(c["index"]): c["name"] for c in cats}
        expected = dict(enumerate(RAW_CLASSES))
        if {k: v for k, v in names.items() if k in expected} != expected:
            raise DataFormatError(path, "category indices differ from the lidarseg 32 classes")

    def sample_tokens(self) -> list[str]:
        """Tokens of the samples (keyframes) with a LIDAR_TOP record, by scene then time."""
        samples = self.table("sample")
        keys = [t for t in samples if "LIDAR_TOP" in self._keyframe_data.get(t, {})]
        return sorted(keys, key=lambda t: (self.scene_name(t), samples[t]["timestamp"]))

    def scene_name(self, sample_token: str) -> str:
        sample = self.table("sample")[sample_token]
        return self.table("scene").get(sample["scene_token"], {}).get("name", "")

    def labelled_sample_data(self) -> dict[str, dict[str, Any]]:
        """lidarseg records by LiDAR sample_data token."""
        return self._labels

    def lidarseg_path(self, lidar_sd_token: str) -> Path | None:
        entry = self._labels.get(lidar_sd_token)
        return None if entry is None else self.root / entry["filename"]

    def _pose(self, table: str, token: str) -> np.ndarray:
        return pose_matrix(self.table_dir / f"{table}.json", self.table(table)[token])

    def keyframe(self, sample_token: str, with_labels: bool = True) -> Keyframe:
        """Load one sample: points, labels (when requested and annotated), cameras."""
        if sample_token not in self.table("sample"):
            raise DataFormatError(self.table_dir / "sample.json", f"no sample {sample_token}")
        data = self._keyframe_data.get(sample_token, {})
        if "LIDAR_TOP" not in data:
            raise DataFormatError(self.table_dir / "sample_data.json", f"{sample_token}: no LiDAR")
        lidar = data["LIDAR_TOP"]
        lidar_path = self.root / lidar["filename"]
        points = read_points(lidar_path)
        raw = labels = None
        label_path = self.lidarseg_path(lidar["token"])
        if with_labels and label_path is not None:
            raw = read_lidarseg(label_path, points.shape[0])
            labels = lidarseg_to_train(raw)
        lidar2ego = self._pose("calibrated_sensor", lidar["calibrated_sensor_token"])
        ego2global = self._pose("ego_pose", lidar["ego_pose_token"])
        cameras = {}
        for channel in CAMERAS:
            if channel not in data:
                continue
            sd = data[channel]
            cs = self.table("calibrated_sensor")[sd["calibrated_sensor_token"]]
            intrinsic = np.asarray(cs.get("camera_intrinsic") or [], dtype=np.float64)
            if intrinsic.shape != (3, 3):
                raise DataFormatError(
                    self.table_dir / "calibrated_sensor.json", f"{cs['token']}: intrinsic not 3x3"
                )
            l2c = lidar_to_camera(
                lidar2ego,
                ego2global,
                self._pose("calibrated_sensor", sd["calibrated_sensor_token"]),
                self._pose("ego_pose", sd["ego_pose_token"]),
            )
            size = (int(sd.get("width") or 1600), int(sd.get("height") or 900))
            cameras[channel] = Camera(channel, self.root / sd["filename"], intrinsic, l2c, size)
        return Keyframe(
            sample_token, self.scene_name(sample_token), lidar_path, points, raw, labels,
            lidar2ego, ego2global, cameras,
        )  # fmt: skip


def check_layout(
    root: str | Path, version: str, expected_labelled: int | None = None
) -> dict[str, Any]:
    """Check a nuScenes-lidarseg release with this reader; raises :class:`DataFormatError`.

    Every lidarseg record must name an existing label file whose size equals its scan's point
    count (file sizes only); the first labelled keyframe is loaded completely (points, labels,
    six cameras and their images on disk). ``expected_labelled``: required number of labelled
    keyframes (v1.0-mini: 404, spec §3).
    """
    nus = NuScenes(root, version)
    for name in TABLES:
        nus.table(name)
    records = nus.labelled_sample_data()
    sample_data = nus.table("sample_data")
    if expected_labelled is not None and len(records) != expected_labelled:
        raise DataFormatError(
            nus.table_dir / "lidarseg.json",
            f"{len(records)} labelled keyframes, {version} has {expected_labelled}",
        )
    for sd_token, entry in records.items():
        label = nus.root / entry["filename"]
        scan = nus.root / sample_data[sd_token]["filename"]
        if not label.is_file():
            raise DataFormatError(label, "lidarseg label file listed in lidarseg.json is missing")
        if not scan.is_file():
            raise DataFormatError(scan, "lidar file of a labelled keyframe is missing")
        if label.stat().st_size * 20 != scan.stat().st_size:
            raise DataFormatError(label, f"{label.stat().st_size} labels, scan {scan.name} differs")
    tokens = [
        t for t in nus.sample_tokens() if nus._keyframe_data[t]["LIDAR_TOP"]["token"] in records
    ]
    if not tokens:
        raise DataFormatError(nus.table_dir / "lidarseg.json", "no labelled keyframe")
    frame = nus.keyframe(tokens[0])
    missing = [
        c for c in CAMERAS if c not in frame.cameras or not frame.cameras[c].image_path.is_file()
    ]
    if missing:
        raise DataFormatError(
            nus.root / "samples", f"keyframe {tokens[0]}: cameras {missing} missing"
        )
    return {
        "version": version,
        "scenes": len(nus.table("scene")),
        "samples": len(nus.table("sample")),
        "labelled_keyframes": len(records),
        "first_keyframe_points": int(frame.points.shape[0]),
    }
