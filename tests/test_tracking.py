"""Tracker interface: JSONL round trip, flatten_params, fan-out, and Trainer logging."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from kdseg.errors import DataFormatError
from kdseg.tracking import (
    JsonlTracker,
    MultiTracker,
    NullTracker,
    Tracker,
    flatten_params,
    read_jsonl,
)
from kdseg.trainer import Trainer, TrainerConfig

pytestmark = pytest.mark.usefixtures("single_thread")


def test_jsonl_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run" / "log.jsonl"
    t = JsonlTracker(path)
    t.log_params({"trainer.lr": "0.001"})
    t.log_metrics({"loss/ce": 0.5, "miou": float("nan")}, step=3)
    t.set_tags({"method": "toy"})
    t.log_artifact(tmp_path / "x.pt")
    t.finish("FAILED")
    records = read_jsonl(path)
    assert [r["event"] for r in records] == ["params", "metrics", "tags", "artifact", "finish"]
    assert records[0]["params"] == {"trainer.lr": "0.001"}
    assert records[1]["step"] == 3 and records[1]["metrics"]["loss/ce"] == 0.5
    assert math.isnan(records[1]["metrics"]["miou"])
    assert records[2]["tags"] == {"method": "toy"}
    assert records[3]["path"] == str((tmp_path / "x.pt").resolve())
    assert records[4]["status"] == "FAILED"
    assert all(isinstance(r["time"], float) for r in records)
    assert len(path.read_text().splitlines()) == 5  # one line per call


def test_jsonl_appends_across_instances_and_survives_a_cut_last_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    JsonlTracker(path).log_metrics({"a": 1.0}, step=1)
    JsonlTracker(path).log_metrics({"a": 2.0}, step=2)
    with open(path, "a") as fh:
        fh.write('{"event": "metrics", "metr')  # a crash in the middle of a write
    assert [r["metrics"]["a"] for r in read_jsonl(path)] == [1.0, 2.0]
    path.write_text('{"event": "tags"}\nnot json\n{"event": "finish"}\n')
    with pytest.raises(DataFormatError, match="line 2: invalid JSON"):
        read_jsonl(path)
    with pytest.raises(DataFormatError, match="does not exist"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_flatten_params() -> None:
    nested = {
        "trainer": {"lr": 0.001, "schedule": "cosine", "grad_clip": None, "nesterov": True},
        "model": {"widths": [32, 64], "stem": {"channels": 16}},
        "seed": 3,
        "empty": {},
    }
    assert flatten_params(nested) == {
        "trainer.lr": "0.001",
        "trainer.schedule": "cosine",
        "trainer.grad_clip": "null",
        "trainer.nesterov": "true",
        "model.widths": "[32, 64]",
        "model.stem.channels": "16",
        "seed": "3",
    }
    assert flatten_params({"p": Path("/tmp/x")}) == {"p": "/tmp/x"}
    with pytest.raises(ValueError, match=r"'a\.b' occurs twice"):
        flatten_params({"a.b": 1, "a": {"b": 2}})


def test_multi_and_null_trackers_follow_the_protocol(tmp_path: Path) -> None:
    a, b = JsonlTracker(tmp_path / "a.jsonl"), JsonlTracker(tmp_path / "b.jsonl")
    multi = MultiTracker([a, NullTracker(), b])
    for t in (a, multi, NullTracker()):
        assert isinstance(t, Tracker)
    multi.log_metrics({"x": 1.0}, step=7)
    multi.finish()
    for path in (a.path, b.path):
        records = read_jsonl(path)
        assert [(r["event"], r.get("step")) for r in records] == [("metrics", 7), ("finish", None)]


class TwoTermMethod(nn.Module):
    """Linear regression with two named, weighted loss terms."""

    teacher = None
    ema_source = None

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(2, 1)

    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        out = self.lin(batch)
        return {"fit": (out - 1.0).square().mean(), "l1": 0.1 * out.abs().mean()}

    def inference_network(self) -> nn.Module:
        return self.lin


def test_trainer_logs_named_loss_terms(tmp_path: Path) -> None:
    cfg = TrainerConfig(iterations=6, log_every=2, lr=0.01, progress=False, checkpoint_every=0)

    def batches(step: int) -> torch.Tensor:
        return torch.randn(8, 2, generator=torch.Generator().manual_seed(step))

    tracker = JsonlTracker(tmp_path / "log.jsonl")
    metrics = Trainer(TwoTermMethod(), batches, cfg, tmp_path, tracker, lambda net: {"k": 1}).fit()
    records = read_jsonl(tmp_path / "log.jsonl")
    params = next(r["params"] for r in records if r["event"] == "params")
    assert params["trainer.iterations"] == "6" and params["trainer.grad_clip"] == "null"
    train = [r for r in records if r["event"] == "metrics" and "loss/total" in r["metrics"]]
    assert [r["step"] for r in train] == [2, 4, 6]
    for r in train:
        m = r["metrics"]
        assert set(m) == {"loss/fit", "loss/l1", "loss/total", "lr", "it_per_s"}
        assert m["loss/total"] == pytest.approx(m["loss/fit"] + m["loss/l1"], rel=1e-12)
        assert m["lr"] == 0.01 and m["it_per_s"] > 0
    final = [r for r in records if r["event"] == "metrics" and "eval/k" in r["metrics"]]
    assert final[0]["step"] == 6 and final[0]["metrics"]["eval/k"] == 1.0
    assert metrics["k"] == 1.0 and metrics["wall_time_s"] > 0
    json.dumps(records)  # everything logged is plain JSON
