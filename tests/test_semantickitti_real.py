"""SemanticKITTI readers, label map, projection and poses on real bytes (shared/realdata)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy.spatial import cKDTree

from kdseg import IGNORE_INDEX
from kdseg.datasets import semantickitti as sk
from kdseg.datasets import semantickitti_labels as L
from kdseg.datasets.kitti_object import calib_from_mmdet3d_info, read_object_frame
from kdseg.geometry import project_points, relative_transform, transform_points

from .conftest import realdata_path


@pytest.fixture(scope="module")
def ds(semantickitti_root):
    return sk.SemanticKITTI(semantickitti_root)


def test_point_counts(ds):
    assert ds.sequences() == ["00"]
    assert ds.frame_ids("00") == [0, 1]
    assert ds.frame("00", 0).num_points == 124_668
    assert ds.frame("00", 1).num_points == 124_605


def test_label_map_matches_official_yaml(semantickitti_root):
    cfg = yaml.safe_load((semantickitti_root / "semantic-kitti.yaml").read_text())
    assert cfg["learning_map"] == L.LEARNING_MAP
    assert cfg["learning_map_inv"] == L.LEARNING_MAP_INV
    assert set(cfg["labels"]) == set(L.RAW_NAMES)
    assert [cfg["labels"][L.LEARNING_MAP_INV[i + 1]] for i in range(19)] == list(L.CLASS_NAMES)
    for i in range(19):  # colours: yaml BGR of the inverse raw id, ours RGB
        bgr = cfg["color_map"][L.LEARNING_MAP_INV[i + 1]]
        assert tuple(L.CLASS_COLORS_RGB[i]) == tuple(bgr[::-1])
    ignored = {k for k, v in cfg["learning_ignore"].items() if v}
    assert ignored == {0}


def test_every_raw_id_maps(ds, semantickitti_root):
    for idx in (0, 1):
        raw, _inst = sk.read_label(ds.path("00", "labels", idx))
        assert L.unknown_raw_ids(raw).size == 0
        train = L.raw_to_train(raw)
        assert train.min() >= 0
        assert set(np.unique(train)) <= set(range(19)) | {IGNORE_INDEX}
        # the raw ids documented for these samples
        if idx == 0:
            assert set(np.unique(raw).tolist()) <= {
                0,
                1,
                10,
                40,
                44,
                48,
                50,
                51,
                52,
                60,
                70,
                71,
                72,
                80,
                81,
                99,
                255,
            }
    # moving-motorcyclist (255) is present in the samples and maps to motorcyclist
    assert L.raw_to_train(np.array([255, 252, 60, 52]))[:3].tolist() == [7, 0, 8]
    assert L.raw_to_train(np.array([52]))[0] == IGNORE_INDEX


def test_instance_ids_decode(ds):
    raw, inst = sk.read_label(ds.path("00", "labels", 0))
    packed = np.fromfile(ds.path("00", "labels", 0), dtype="<u4")
    assert np.array_equal((inst.astype(np.uint32) << 16) | raw, packed)
    cars = raw == 10
    assert cars.any()
    assert (inst[cars] > 0).all(), "every car point carries an instance id"
    assert np.unique(inst[cars]).size > 1, "several car instances in the first scan"
    stuff = np.isin(raw, [40, 48, 50, 70])
    assert (inst[stuff] == 0).all(), "stuff classes carry no instance id"


def test_projection_into_image_2(ds):
    frame = ds.frame("00", 0)
    proj = project_points(frame.points[:, :3], frame.calib.P2, frame.calib.Tr, (1241, 376))
    n_in = int(proj.valid.sum())
    assert n_in == 19_369, n_in  # documented in shared/specs/datasets.md §1.1
    assert (proj.depth[proj.valid] > 0).all()
    # points behind the camera never count, even if their homogeneous division lands inside
    behind = proj.depth <= 0
    assert not (proj.valid & behind).any()
    # the camera looks forward: valid points have x > 0 in the LiDAR frame
    assert (frame.points[proj.valid, 0] > 0).all()


def _building_nn_median(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.median(cKDTree(a).query(b, k=1)[0]))


def test_pose_chaining_aligns_static_structure(ds):
    f0, f1 = ds.frame("00", 0), ds.frame("00", 1)
    b0 = f0.points[f0.labels == L.CLASS_NAMES.index("building"), :3]
    b1 = f1.points[f1.labels == L.CLASS_NAMES.index("building"), :3]
    poses = ds.lidar_poses("00")
    b1_in_0 = transform_points(relative_transform(poses, 0, 1), b1)
    before = _building_nn_median(b0, b1)
    after = _building_nn_median(b0, b1_in_0)
    # the car moved ~0.8 m between the scans; after chaining the building points coincide
    assert np.linalg.norm(relative_transform(poses, 0, 1)[:3, 3]) > 0.5
    assert after < 0.5 * before, (before, after)
    assert after < 0.1, after


def test_kitti_object_frame_projection():
    root = realdata_path("kitti_object")
    calib = calib_from_mmdet3d_info(root / "mmdet3d_infos" / "000008.pkl")
    frame = read_object_frame(root, 8, calib=calib, velodyne="velodyne_reduced")
    assert frame.points.shape == (17_238, 4)
    assert frame.image.shape == (375, 1242, 3)
    proj = frame.image_projection()
    assert proj.valid.all(), "velodyne_reduced keeps only points in the camera's view"
    # the reduced cloud spans the image: projections reach near all four borders
    uv = proj.uv
    assert uv[:, 0].min() < 50 and uv[:, 0].max() > 1190
    assert uv[:, 1].max() > 300
