"""One training run end to end on the smoke-scale synthetic street data (`kdseg train`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kdseg.cli import main
from kdseg.datasets.semantickitti_labels import CLASS_NAMES
from kdseg.datasets.synthetic_street import StreetConfig, generate
from kdseg.errors import ConfigError
from kdseg.segmenter import build_segmenter


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("street") / "street", StreetConfig.for_scale("smoke"))


def _train(data: Path, out: Path, method: str = "sup_only", seed: int = 0) -> dict:
    rc = main(
        [
            "train",
            "--data",
            str(data),
            "--budget",
            "scans-50",
            "--method",
            method,
            "--seed",
            str(seed),
            "--scale",
            "smoke",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    return json.loads((out / "metrics.json").read_text())


def test_train_writes_metrics_and_model(smoke_data, tmp_path):
    m = _train(smoke_data, tmp_path / "run")
    assert 0.0 <= m["miou"] <= 1.0
    assert set(m["per_class_iou"]) == set(CLASS_NAMES)
    assert m["parameters"] > 0 and m["inference_latency_ms"] > 0 and m["wall_time_s"] > 0
    assert m["config"]["method"] == "sup_only" and m["config"]["budget"] == "scans-50"
    assert m["config"]["trainer"]["iterations"] == 3
    assert m["config"]["sparse_backend"] == "torch"  # CPU: the PyTorch backend
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    net = build_segmenter(**m["network"])
    net.load_state_dict(state)
    assert sum(p.numel() for p in net.parameters()) == m["parameters"]
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_same_seed_same_metrics(smoke_data, tmp_path):
    a = _train(smoke_data, tmp_path / "a", seed=3)
    b = _train(smoke_data, tmp_path / "b", seed=3)
    assert a["miou"] == b["miou"]
    assert a["confusion_matrix"] == b["confusion_matrix"]


def test_interrupted_run_resumes_to_identical_metrics(smoke_data, tmp_path, monkeypatch):
    """Stop a LaserMix run part-way (checkpoint on exit), resume it: same metrics as one go."""
    from kdseg.budgets import make_split
    from kdseg.datasets.splits import split_frames
    from kdseg.lidar_data import LidarBatches
    from kdseg.run import train_run

    split = make_split("street", split_frames(smoke_data, "train"), "scans-50", seed=1)
    kwargs = {"scale": "smoke", "seed": 1, "trainer_overrides": {"iterations": 4}}
    whole = train_run(smoke_data, split, "lasermix", tmp_path / "whole", **kwargs)

    original = LidarBatches.__call__
    calls = {"n": 0}

    def interrupt_at_step_2(self, step):
        if step == 2 and calls["n"] == 0:
            calls["n"] += 1
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(LidarBatches, "__call__", interrupt_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        train_run(smoke_data, split, "lasermix", tmp_path / "resumed", **kwargs)
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    resumed = train_run(smoke_data, split, "lasermix", tmp_path / "resumed", **kwargs)
    assert resumed["miou"] == whole["miou"]
    assert resumed["confusion_matrix"] == whole["confusion_matrix"]


def test_checkpoint_of_another_configuration_is_discarded(
    smoke_data, tmp_path, monkeypatch, capsys
):
    """The run folder belongs to the configuration last started in it: an interrupted run's
    checkpoint made under other options is dropped (with a note) and the new run trains fully."""
    from kdseg.budgets import make_split
    from kdseg.datasets.splits import split_frames
    from kdseg.lidar_data import LidarBatches
    from kdseg.run import train_run
    from kdseg.tracking import read_jsonl

    split = make_split("street", split_frames(smoke_data, "train"), "scans-50", seed=0)
    original = LidarBatches.__call__

    def stop_at_1(self, step):
        if step == 1:
            raise KeyboardInterrupt
        return original(self, step)

    out = tmp_path / "r"
    monkeypatch.setattr(LidarBatches, "__call__", stop_at_1)
    with pytest.raises(KeyboardInterrupt):
        train_run(smoke_data, split, "mean_teacher", out, scale="smoke")
    assert (out / "checkpoint_last.pt").is_file()
    monkeypatch.setattr(LidarBatches, "__call__", original)
    capsys.readouterr()
    options = {"consistency_weight": 5.0}
    result = train_run(smoke_data, split, "mean_teacher", out, scale="smoke", options=options)
    assert "discarding the checkpoint of another configuration (differs in ['options'])" in (
        capsys.readouterr().err
    )
    assert result["config"]["options"]["consistency_weight"] == 5.0
    steps = [
        r["step"]
        for r in read_jsonl(out / "train_log.jsonl")
        if "loss/total" in r.get("metrics", {})
    ]
    assert steps == [1, 2, 3]  # trained from step 0; the earlier attempt's log is gone
    assert json.loads((out / "run_config.json").read_text())["options"]["consistency_weight"] == 5.0
    assert not (out / "checkpoint_last.pt").exists()


def test_rerun_of_a_finished_run_trains_from_scratch(smoke_data, tmp_path):
    from kdseg.tracking import read_jsonl

    first = _train(smoke_data, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint_last.pt").exists()  # not a resume point
    second = _train(smoke_data, tmp_path / "run")
    log = read_jsonl(tmp_path / "run" / "train_log.jsonl")
    steps = [r["step"] for r in log if "loss/total" in r.get("metrics", {})]
    assert steps == [1, 2, 3]  # this run's three steps, once
    assert second["confusion_matrix"] == first["confusion_matrix"]  # the same training again


def test_schedule_multiplies_iterations_and_warmup(smoke_data, tmp_path):
    """A convergence study trains the same variant at a multiple of the scale's schedule."""
    from kdseg.budgets import make_split
    from kdseg.datasets.splits import split_frames
    from kdseg.run import train_run

    split = make_split("street", split_frames(smoke_data, "train"), "full", 0)
    m = train_run(smoke_data, split, "sup_only", tmp_path / "x2", scale="smoke", schedule=2.0)
    assert m["config"]["trainer"]["iterations"] == 6 and m["config"]["schedule"] == 2.0
    with pytest.raises(ConfigError, match="schedule"):
        train_run(smoke_data, split, "sup_only", tmp_path / "x0", scale="smoke", schedule=0.0)


def test_parity_reference_is_named_by_the_method_class(monkeypatch):
    """Default: a fresh network of the deployed spec; a class may name a registered method
    whose deployed network (with the run's shared options) is the reference."""
    from kdseg.methods.base import build_method, method_class
    from kdseg.run import parity_reference

    model = build_method("mean_teacher", 19, {"backbone": "range_unet_tiny"})
    net = model.inference_network()
    ref, what = parity_reference(model, net)
    assert what == "network spec" and ref.spec() == net.spec() and ref is not net
    monkeypatch.setattr(method_class("mean_teacher"), "parity_reference", "sup_only")
    ref, what = parity_reference(model, net)
    assert what == "method sup_only" and ref.spec() == net.spec()  # backbone option shared
