"""nuScenes-lidarseg reader: the real v1.0-mini keyframe in ../shared/realdata/nuscenes (points,
cameras, the calibration of mmdetection3d's info pkl), JSON tables written in the official format
from that calibration, and labels written in the official format (none are public)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from kdseg.datasets import nuscenes as nus
from kdseg.errors import DataFormatError
from kdseg.geometry import project_points
from tests.conftest import realdata_path

LIDAR_FILE = "n015-2018-07-24-11-22-45+0800__LIDAR_TOP__1532402927647951.pcd.bin"
LIDAR_SD = "f" * 32  # the info pkl does not carry the LiDAR sample_data token: ours
# spec §3: raw index -> lidarseg class 1..16 (0 = ignored); kdseg train id = class - 1
SPEC_CLASS = [0, 0, 7, 7, 7, 0, 7, 0, 0, 1, 0, 0, 8, 0, 2, 3, 3, 4, 5, 0, 0, 6, 9, 10, 11, 12,
              13, 14, 15, 0, 16, 0]  # fmt: skip


@pytest.fixture(scope="module")
def info() -> dict:
    path = realdata_path("nuscenes", "mmdet3d_infos", "n015-2018-07-24-11-22-45+0800.pkl")
    with open(path, "rb") as fh:
        return pickle.load(fh)["data_list"][0]


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    return nus.read_points(realdata_path("nuscenes", "samples", "LIDAR_TOP", LIDAR_FILE))


def test_real_points_have_five_columns_and_32_rings(points):
    assert points.shape == (34688, 5) and points.dtype == np.float32
    assert set(np.unique(points[:, 4]).astype(int)) == set(range(32))


@pytest.mark.parametrize(("camera", "inside"), [("CAM_FRONT", 3067), ("CAM_BACK", 4826)])
def test_pkl_calibration_projects_documented_counts(info, points, camera, inside):
    cam = info["images"][camera]
    P = np.hstack([np.asarray(cam["cam2img"]), np.zeros((3, 1))])
    proj = project_points(points[:, :3], P, np.asarray(cam["lidar2cam"]), (1600, 900))
    assert int(proj.valid.sum()) == inside  # realdata/README.md


def _pose(T: np.ndarray, token: str) -> dict:
    x, y, z, w = Rotation.from_matrix(T[:3, :3]).as_quat()
    return {"token": token, "rotation": [w, x, y, z], "translation": T[:3, 3].tolist()}


def _write_release(root, info, raw_labels: np.ndarray | None) -> None:
    """Official v1.0-mini tables for the one real keyframe; samples/ links to the real files."""
    (root / "samples").symlink_to(realdata_path("nuscenes", "samples"), target_is_directory=True)
    tables = root / "v1.0-mini"
    tables.mkdir()
    sample, scene = info["token"], "e" * 32
    ego_lidar, lidar2ego = (
        np.asarray(info["ego2global"]),
        np.asarray(info["lidar_points"]["lidar2ego"]),
    )
    t = {k: [] for k in nus.TABLES}
    t["scene"].append({"token": scene, "name": "scene-0061", "first_sample_token": sample})
    t["sample"].append({"token": sample, "timestamp": 1532402927647951, "scene_token": scene,
                        "prev": "", "next": ""})  # fmt: skip
    channels = {"LIDAR_TOP": None, **info["images"]}
    for ch, cam in channels.items():
        t["sensor"].append({"token": f"s-{ch}", "channel": ch})
        if cam is None:
            calib, ego, sd_token, fname, size = lidar2ego, ego_lidar, LIDAR_SD, LIDAR_FILE, (0, 0)
        else:  # the camera's ego pose, from the pkl's combined lidar2cam
            calib = np.asarray(cam["cam2ego"])
            ego = ego_lidar @ lidar2ego @ np.linalg.inv(cam["lidar2cam"]) @ np.linalg.inv(calib)
            sd_token, fname, size = cam["sample_data_token"], cam["img_path"], (1600, 900)
        cs = _pose(calib, f"cs-{ch}") | {"sensor_token": f"s-{ch}"}
        cs["camera_intrinsic"] = [] if cam is None else np.asarray(cam["cam2img"]).tolist()
        t["calibrated_sensor"].append(cs)
        t["ego_pose"].append(_pose(ego, f"ep-{ch}") | {"timestamp": 0})
        t["sample_data"].append({
            "token": sd_token, "sample_token": sample, "ego_pose_token": f"ep-{ch}",
            "calibrated_sensor_token": f"cs-{ch}", "filename": f"samples/{ch}/{fname}",
            "is_key_frame": True, "width": size[0], "height": size[1],
        })  # fmt: skip
    t["category"] = [
        {"token": f"c{i}", "name": n, "index": i} for i, n in enumerate(nus.RAW_CLASSES)
    ]
    if raw_labels is not None:
        name = f"lidarseg/v1.0-mini/{'a' * 32}_lidarseg.bin"
        t["lidarseg"].append({"token": "a" * 32, "sample_data_token": LIDAR_SD, "filename": name})
        nus.write_lidarseg(root / name, raw_labels)
    for name, rows in t.items():
        (tables / f"{name}.json").write_text(json.dumps(rows))


def test_json_tables_reproduce_the_pkl_calibration(tmp_path, info, points):
    raw = np.arange(points.shape[0]) % 32
    _write_release(tmp_path, info, raw)
    reader = nus.NuScenes(tmp_path, "v1.0-mini")
    frame = reader.keyframe(info["token"])
    assert frame.points.shape == (34688, 5) and frame.scene == "scene-0061"
    assert np.array_equal(frame.raw_labels, raw)
    assert sorted(frame.cameras) == sorted(nus.CAMERAS)
    for ch, cam in frame.cameras.items():
        np.testing.assert_allclose(cam.lidar2cam, info["images"][ch]["lidar2cam"], atol=2e-5)
        assert cam.size == (1600, 900) and cam.image_path.is_file()
        # the derived camera ego pose lies within 1 m / 1 deg of the LiDAR's (30 ms apart)
        ego_cam = reader._pose("ego_pose", f"ep-{ch}")
        assert np.linalg.norm(ego_cam[:3, 3] - frame.ego2global[:3, 3]) < 1.0
        angle = Rotation.from_matrix(ego_cam[:3, :3].T @ frame.ego2global[:3, :3]).magnitude()
        assert np.degrees(angle) < 1.0
    assert int(frame.cameras["CAM_FRONT"].project(frame.points).valid.sum()) == 3067
    assert frame.cameras["CAM_FRONT"].read_image().shape == (900, 1600, 3)
    summary = nus.check_layout(tmp_path, "v1.0-mini", expected_labelled=1)
    assert summary["labelled_keyframes"] == 1 and summary["first_keyframe_points"] == 34688
    with pytest.raises(DataFormatError, match=r"1 labelled keyframes, v1\.0-mini has 404"):
        nus.check_layout(tmp_path, "v1.0-mini", expected_labelled=404)


def test_layout_check_finds_a_label_file_of_the_wrong_size(tmp_path, info):
    _write_release(tmp_path, info, np.zeros(34687, dtype=np.uint8))
    with pytest.raises(DataFormatError, match="34687 labels") as err:
        nus.check_layout(tmp_path, "v1.0-mini")
    assert "\n" not in str(err.value)


def test_label_reader_and_class_map_on_official_bytes(tmp_path):
    raw = np.arange(32, dtype=np.uint8).repeat(3)
    path = tmp_path / "tok_lidarseg.bin"
    path.write_bytes(raw.tobytes())  # the official format: one uint8 per point, no header
    got = nus.read_lidarseg(path, num_points=96)
    assert got.dtype == np.uint8 and np.array_equal(got, raw)
    train = nus.lidarseg_to_train(got)
    expected = np.array([c - 1 if c else 255 for c in SPEC_CLASS], dtype=np.uint8).repeat(3)
    assert np.array_equal(train, expected)
    assert sorted(set(train.tolist()) - {255}) == list(range(16)) and len(nus.CLASSES) == 16
    assert nus.CLASSES[train[17 * 3]] == "car" and nus.CLASSES[train[30 * 3]] == "vegetation"


def test_label_reader_refuses_bad_files_with_one_line(tmp_path):
    path = tmp_path / "x_lidarseg.bin"
    path.write_bytes(bytes([0, 5, 31, 40, 200]))
    with pytest.raises(DataFormatError, match=r"unknown category indices \[40, 200\]") as err:
        nus.read_lidarseg(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    path.write_bytes(bytes(10))
    with pytest.raises(DataFormatError, match="has 10 labels but the scan has 12 points"):
        nus.read_lidarseg(path, num_points=12)
    with pytest.raises(DataFormatError, match="does not exist"):
        nus.read_lidarseg(tmp_path / "missing.bin")


def test_point_reader_refuses_bad_files(tmp_path):
    path = tmp_path / "x.pcd.bin"
    path.write_bytes(bytes(24))
    with pytest.raises(DataFormatError, match="not a multiple of 20"):
        nus.read_points(path)
    pts = np.zeros((3, 5), np.float32)
    pts[1, 4] = 32
    nus.write_points(path, pts)
    with pytest.raises(DataFormatError, match="ring column"):
        nus.read_points(path)
    pts[1, 4], pts[2, 0] = 3, np.nan
    nus.write_points(path, pts)
    with pytest.raises(DataFormatError, match="NaN"):
        nus.read_points(path)


def test_tables_without_lidarseg_categories_are_refused(tmp_path, info):
    _write_release(tmp_path, info, None)
    cats = tmp_path / "v1.0-mini" / "category.json"
    rows = json.loads(cats.read_text())
    cats.write_text(json.dumps([{k: v for k, v in r.items() if k != "index"} for r in rows]))
    with pytest.raises(DataFormatError, match="extract the lidarseg archive"):
        nus.NuScenes(tmp_path, "v1.0-mini")
    rows[0]["index"], rows[1]["index"] = 1, 0
    cats.write_text(json.dumps(rows))
    with pytest.raises(DataFormatError, match="differ from the lidarseg 32 classes"):
        nus.NuScenes(tmp_path, "v1.0-mini")


def test_keyframe_without_labels_and_quaternion_convention(tmp_path, info):
    _write_release(tmp_path, info, None)
    frame = nus.NuScenes(tmp_path, "v1.0-mini").keyframe(info["token"])
    assert frame.labels is None and frame.raw_labels is None
    half = np.sqrt(0.5)  # 90 degrees about z, nuScenes order [w, x, y, z]
    R = nus.quaternion_matrix(tmp_path, [half, 0.0, 0.0, half])
    np.testing.assert_allclose(R @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    with pytest.raises(DataFormatError, match="unit quaternion"):
        nus.quaternion_matrix(tmp_path, [2.0, 0.0, 0.0, 0.0])
