"""Realism statistics and frame pictures (on real SemanticKITTI bytes and smoke synthetic data)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from kdseg.cli import main
from kdseg.datasets.semantickitti import SemanticKITTI
from kdseg.datasets.semantickitti_labels import CLASS_COLORS_RGB, CLASS_NAMES
from kdseg.datasets.synthetic_street import StreetConfig, generate
from kdseg.realism import RANGE_EDGES, dataset_stats, realism_table, yaml_class_shares
from kdseg.viz import bev_image, camera_overlay

from .conftest import realdata_path


def test_real_scan_statistics(semantickitti_root):
    stats = dataset_stats(semantickitti_root, image_size=(1241, 376))
    rows = stats.rows()
    assert stats.scans == 2 and rows["points per scan"] == (124_668 + 124_605) / 2
    ranges = [v for k, v in rows.items() if k.startswith("range")]
    assert len(ranges) == len(RANGE_EDGES) - 1 and abs(sum(ranges) - 100) < 1e-9
    classes = [v for k, v in rows.items() if k.startswith("class")]
    assert abs(sum(classes) - 100) < 1e-9
    # 19,369 of scan 0's points land in image_2 (datasets.md), scan 1 about the same
    assert 15.0 < rows["inside camera image (%)"] < 16.0


def test_yaml_shares_and_table(semantickitti_root):
    shares = yaml_class_shares(semantickitti_root / "semantic-kitti.yaml")
    assert len(shares) == len(CLASS_NAMES) + 1
    assert 95 < sum(shares.values()) < 101  # `content` also counts the test-only raw ids
    assert abs(shares["class road (%)"] - 100 * (0.1987 + 0.0029 + 0.0)) < 0.5  # road + lane
    table = realism_table(
        {"real": dataset_stats(semantickitti_root, image_size=(1241, 376))}, {"yaml": shares}
    )
    assert table.count("\n") == 2 + 1 + 6 + 19 + 1 + 1 - 1
    assert "| points per scan | 124,636 | – |" in table


def test_bev_and_overlay_pictures(tmp_path):
    root = generate(tmp_path / "street", StreetConfig.for_scale("smoke"))
    frame = SemanticKITTI(root).frame("08", 0, with_image=True)
    bev = bev_image(frame.points, frame.labels, half_extent=20.0, resolution=0.1)
    assert bev.shape == (400, 400, 3)
    road = CLASS_COLORS_RGB[CLASS_NAMES.index("road")]
    assert (bev == road).all(axis=2).sum() > 50, "road points are drawn in the road colour"
    overlay = camera_overlay(frame, frame.labels)
    assert overlay.shape == frame.image.shape
    assert not np.array_equal(overlay, frame.image)
    rc = main(
        [
            "render",
            "--data",
            str(root),
            "--sequence",
            "08",
            "--frame",
            "0",
            "--out",
            str(tmp_path / "img"),
        ]
    )
    assert rc == 0
    for suffix in ("bev", "camera", "image"):
        with Image.open(tmp_path / "img" / f"08_000000_{suffix}.png") as im:
            assert im.size[0] > 0


def test_kitti_object_overlay_draws_points():
    from kdseg.datasets.kitti_object import calib_from_mmdet3d_info, read_object_frame

    root = realdata_path("kitti_object")
    calib = calib_from_mmdet3d_info(root / "mmdet3d_infos" / "000008.pkl")
    obj = read_object_frame(root, 8, calib=calib, velodyne="velodyne_reduced")
    assert obj.image_projection().valid.sum() == 17_238
