"""nuScenes in the workflow (LaserMix's nuScenes protocol with ``--config data=real``): the
layout (frames, official scene split, 16 classes, intensity), budget splits, ``kdseg train`` at
smoke scale and the real-data DAG on a tiny release built from the real mini keyframe
(:mod:`tests.nuscenes_tree`), and the validation of the real-data configuration."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from kdseg.budgets import make_split, read_split
from kdseg.cli import main
from kdseg.datasets import nuscenes as nus
from kdseg.datasets.lidar_layouts import open_layout
from kdseg.datasets.nuscenes_splits import SPLITS, TEST, TRAIN, VAL
from kdseg.errors import ConfigError, DataFormatError
from kdseg.workflow import active_studies, validate_config
from tests.nuscenes_tree import SCENES, raw_labels, real_points, write_release

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"
LAYOUT = ["--data-format", "nuscenes", "--data-version", "v1.0-mini"]


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nuscenes")
    write_release(root)
    return root


def test_official_scene_split_is_complete_and_disjoint():
    assert (len(TRAIN), len(VAL), len(TEST)) == (700, 150, 150)
    assert len(set(TRAIN) | set(VAL) | set(TEST)) == 1000  # the devkit's own assertion
    mini = SPLITS["v1.0-mini"]
    assert len(mini["train"]) == 8 and mini["val"] == ("scene-0103", "scene-0916")
    assert set(SCENES) <= set(mini["train"]) | set(mini["val"])


def test_layout_frames_in_time_order_with_the_mini_split(release):
    layout = open_layout(release, "nuscenes", "v1.0-mini")
    assert layout.groups() == {"train": ("scene-0061", "scene-0553"), "val": ("scene-0103",)}
    assert layout.split_frames("val") == [("scene-0103", 0), ("scene-0103", 1)]
    # keyframe k of a scene is its k-th in time (the lidarseg table lists them reversed)
    stamps = [int(layout.scan_path(("scene-0061", k)).stem.rsplit("__", 1)[1][:16]) for k in (0, 1)]
    assert stamps[0] < stamps[1]
    assert layout.num_classes == 16 and layout.class_names[0] == "barrier"


def test_layout_reads_xyz_intensity_and_the_16_class_labels(release):
    layout = open_layout(release, "nuscenes", "v1.0-mini")
    raw_points = nus.read_points(layout.scan_path(("scene-0061", 1)))
    points, labels, labelled = layout.read(("scene-0061", 1), "labels")
    assert points.shape == (raw_points.shape[0], 4) and points.dtype == np.float32
    np.testing.assert_array_equal(points[:, :3], raw_points[:, :3])
    np.testing.assert_allclose(points[:, 3], raw_points[:, 3] / 255.0, rtol=1e-6)
    assert 0.0 <= points[:, 3].min() and points[:, 3].max() <= 1.0
    expected = nus.lidarseg_to_train(raw_labels(raw_points)).astype(np.int64)
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(labelled, expected != 255)
    # driveable_surface (raw 24 -> class 11 -> train id 10), vehicle.ego ignored
    assert labels[raw_labels(raw_points) == 24][0] == 10
    assert (labels[raw_labels(raw_points) == 31] == 255).all()


def test_check_record_and_budget_splits(release):
    layout = open_layout(release, "nuscenes", "v1.0-mini")
    record = layout.check()
    assert record["format"] == "nuscenes" and record["version"] == "v1.0-mini"
    assert record["frames"] == {"scene-0061": 3, "scene-0553": 2, "scene-0103": 2}
    split = layout.draw_split("nuscenes", "scans-50", seed=0)
    assert len(split.labelled) == 2 and len(split.unlabelled) == 3  # round(0.5 * 5)
    layout.check_split(split, "split.json", dataset="nuscenes")
    with pytest.raises(ConfigError, match="nuscenes format has no scribbles labels"):
        layout.draw_split("nuscenes", "scribbles", seed=0)
    frames = [*layout.split_frames("train"), ("scene-0103", 0)]
    leaky = make_split("nuscenes", frames, "full", 0, fingerprint=split.fingerprint)
    with pytest.raises(DataFormatError, match="is in validation scene scene-0103"):
        layout.check_split(leaky, "split.json")


def test_broken_files_are_named(tmp_path):
    write_release(tmp_path, scenes={"scene-0061": 1, "scene-0103": 1})
    layout = open_layout(tmp_path, "nuscenes", "v1.0-mini")
    label = layout.label_path(("scene-0103", 0), "labels")
    label.write_bytes(label.read_bytes()[:-3])
    with pytest.raises(DataFormatError, match=r"_lidarseg\.bin: size .* bytes, but its scan has"):
        layout.check()
    with pytest.raises(ConfigError, match=r"no official scene split of 'v1\.0-test'"):
        open_layout(tmp_path, "nuscenes", "v1.0-test")
    with pytest.raises(ConfigError, match="--data-version"):
        open_layout(tmp_path, "nuscenes")


@pytest.mark.slow
def test_kdseg_train_at_smoke_scale_on_nuscenes(release, tmp_path, single_thread):
    """check-data, split and train as the workflow calls them (the layout before the command):
    a LaserMix run whose record has the 16 nuScenes classes and names the layout."""
    record, split_file = tmp_path / "data.json", tmp_path / "split.json"
    assert main([*LAYOUT, "check-data", "--data", str(release), "--out", str(record)]) == 0
    assert json.loads(record.read_text())["split"]["val"] == ["scene-0103"]
    args = ["--data", str(release), "--dataset", "nuscenes", "--budget", "scans-50"]
    assert main([*LAYOUT, "split", *args, "--seed", "0", "--out", str(split_file)]) == 0
    assert read_split(split_file).dataset == "nuscenes"
    out = tmp_path / "run"
    train = ["train", "--data", str(release), "--dataset", "nuscenes", "--split", str(split_file)]
    train += ["--method", "lasermix", "--scale", "smoke", "--seed", "0", "--out", str(out)]
    assert main([*LAYOUT, *train]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["per_class_iou"]) == sorted(nus.CLASSES)
    assert np.asarray(metrics["confusion_matrix"]).shape == (16, 16)
    assert np.asarray(metrics["confusion_matrix"]).sum() > 0
    cfg = metrics["config"]
    assert (cfg["data_format"], cfg["data_version"], cfg["dataset"]) == (
        "nuscenes",
        "v1.0-mini",
        "nuscenes",
    )
    assert (cfg["labelled_scans"], cfg["unlabelled_scans"], cfg["val_frames"]) == (2, 3, 2)
    # IGNet's camera features are refused on nuScenes, before training
    assert main([*LAYOUT, *train[:-1], str(tmp_path / "ignet"), "--method", "ignet"]) == 2


def _config(data: str = "real") -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["data"] = data
    return config


def test_real_data_config_runs_the_nuscenes_study():
    real, synthetic = _config("real"), _config("synthetic")
    validate_config(real, SCHEMA)
    validate_config(synthetic, SCHEMA)
    assert "table_nuscenes" in active_studies(real)
    assert "table_nuscenes" not in active_studies(synthetic)  # no generator: real data only
    study = real["studies"]["table_nuscenes"]
    assert study["budgets"] == ["scans-1", "scans-10", "scans-20", "scans-50"]
    assert real["datasets"][study["dataset"]]["reported_dataset"] == "nuscenes"


@pytest.mark.parametrize(
    ("edit", "key", "problem"),
    [
        (lambda c: c["datasets"]["nuscenes"].pop("version"), "datasets.nuscenes.version", "needs"),
        (
            lambda c: c["datasets"]["nuscenes"].update(version="v1.0-test"),
            "datasets.nuscenes.version",
            "is not one of",
        ),
        (
            lambda c: c["datasets"]["street"].update(version="v1.0-mini"),
            "datasets.street.version",
            "has none",
        ),
        (
            lambda c: c["studies"]["table_nuscenes"]["budgets"].append("scribbles"),
            r"studies.table_nuscenes.budgets\[4\]",
            "no scribbles labels",
        ),
        (
            lambda c: c["studies"]["table_nuscenes"]["rows"].append("ignet"),
            r"studies.table_nuscenes.rows\[3\]",
            "ignet needs \\['features_2d'\\]",
        ),
        (
            lambda c: c["datasets"]["nuscenes"].update(format="nuscenes-lidarseg"),
            "datasets.nuscenes.format",
            "is not one of",
        ),
    ],
)
def test_real_data_config_errors_name_the_key(edit, key, problem):
    config = copy.deepcopy(_config("real"))
    edit(config)
    with pytest.raises(ConfigError, match=f"'{key}'.*{problem}"):
        validate_config(config, SCHEMA)


@pytest.mark.slow
def test_real_data_dag_on_nuscenes(release, tmp_path):
    """``snakemake --config data=real`` on the nuScenes release: check, split, LaserMix and
    Sup-only runs, tracking and the table with the papers' nuScenes numbers beside ours."""
    config = _config("real")
    config["datasets"] = {"nuscenes": {**config["datasets"]["nuscenes"], "version": "v1.0-mini"}}
    study = {**config["studies"]["table_nuscenes"], "rows": ["sup_only", "lasermix"]}
    config["studies"] = {"table_nuscenes": {**study, "budgets": ["scans-50"]}}
    config["studies"]["table_nuscenes"]["per_class_budget"] = "scans-50"
    config.pop("ignet_figure")
    config["reported_numbers"] = str(REPO.parent / "shared" / "specs" / "reported_numbers.csv")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nuscenes").symlink_to(release, target_is_directory=True)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path)]
    cmd += ["--cores", "2", "reports/table_nuscenes.pdf", "--config", "scale=smoke"]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "--data-format nuscenes --data-version v1.0-mini train" in out.stdout + out.stderr
    markdown = (tmp_path / "reports" / "table_nuscenes.md").read_text()
    assert "driveable_surface" in markdown and "nuscenes" in markdown.lower()
    assert "Cylinder3D" in markdown  # the reported LaserMix / Sup-only nuScenes numbers
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(tmp_path / "reports" / "table_nuscenes.pdf"), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "LaserMix" in text and "50%" in text
    run = tmp_path / "results/smoke/runs/nuscenes/lasermix/scans-50/seed0/metrics.json"
    assert json.loads(run.read_text())["config"]["data_version"] == "v1.0-mini"


def test_real_points_fixture_is_the_mini_keyframe():
    assert real_points().shape == (34688, 5)
