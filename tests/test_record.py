"""The run record (metrics.json): written by the run, read by the report and by tracking."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kdseg.errors import DataFormatError
from kdseg.record import SCHEMA_VERSION, Environment, RunRecord
from kdseg.report.collect import collect_runs, load_metrics

CLASSES = [
    "car", "bicycle", "motorcycle", "truck", "other-vehicle", "person", "bicyclist",
    "motorcyclist", "road", "parking", "sidewalk", "other-ground", "building", "fence",
    "vegetation", "trunk", "terrain", "pole", "traffic-sign",
]  # fmt: skip
CONFIG = {"method": "m", "variant": "v", "dataset": "street", "budget": "full", "seed": 0}
CONFIG |= {"scale": "smoke", "trainer": {"iterations": 3}}


def record(**changes) -> RunRecord:
    values = {
        "miou": 0.4,
        "accuracy": 0.7,
        "per_class_iou": {c: 0.4 for c in CLASSES} | {"car": None},
        "confusion_matrix": [[1] * 19 for _ in range(19)],
        "deployed": "teacher",
        "network": {"backbone": "minkunet_tiny", "num_classes": 19},
        "networks": {"student": {"miou": 0.3, "accuracy": 0.6}, "teacher": {"miou": 0.4}},
        "wall_time_s": 2.0,
        "parameters": 10,
        "inference_latency_ms": 1.5,
        "config": CONFIG,
        "parity": {"reference": "network spec", "parameters_ratio": 1.0, "latency_ratio": 0.9},
        "environment": Environment("h", None, "2.14.1", 1, "cpu", "0.1.0", "a" * 40, "3.11"),
        "attempt": "abc",
    }
    return RunRecord(**(values | changes))


def test_round_trip_and_final_metrics(tmp_path: Path):
    path = tmp_path / "metrics.json"
    rec = record()
    rec.write(path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["environment"]["hostname"] == "h"
    back = RunRecord.read(path)
    assert back == rec
    final = back.final_metrics()
    assert final["miou"] == 0.4 and math.isnan(final["iou/car"]) and final["teacher/miou"] == 0.4
    assert final["parity/latency_ratio"] == 0.9 and final["parameters"] == 10.0
    assert "parity/reference" not in final  # a string: not a metric
    tags = rec.environment.tags()  # type: ignore[union-attr]
    assert tags["kdseg.hostname"] == "h" and "kdseg.slurm_job_id" not in tags
    assert tags["mlflow.source.git.commit"] == "a" * 40
    assert load_metrics(path)["miou"] == pytest.approx(40.0)  # the report reads it


def test_unknown_versions_are_refused_with_one_line(tmp_path: Path):
    path = tmp_path / "run" / "metrics.json"
    path.parent.mkdir()
    data = record().to_dict() | {"schema_version": 99}
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError) as err:
        collect_runs([path])
    assert str(err.value) == (
        f"{path}: run record schema_version 99 is not one this kdseg reads [1, 2] (written by "
        "another kdseg version: update kdseg or rerun the run)"
    )


def test_version_1_records_are_read(tmp_path: Path):
    """Records written before the version field (no environment, no attempt) still report."""
    path = tmp_path / "metrics.json"
    data = record().to_dict()
    for key in ("schema_version", "environment", "attempt"):
        del data[key]
    data["parity"] = {"parameters_sup_only": 10, "parameters_ratio": 1.0, "latency_ratio": 1.0}
    path.write_text(json.dumps(data))
    rec = RunRecord.read(path)
    assert rec.schema_version == 1 and rec.environment is None and rec.attempt is None
    assert load_metrics(path)["parity/parameters_ratio"] == 1.0


def test_malformed_environment(tmp_path: Path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(record().to_dict() | {"environment": {"hostname": "h"}}))
    with pytest.raises(DataFormatError, match="'environment' must be an object with keys"):
        RunRecord.read(path)
