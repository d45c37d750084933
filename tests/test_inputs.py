"""Every input provider and teacher kind (registry-parametrized): a new one is tested here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kdseg.errors import ConfigError, DataFormatError
from kdseg.inputs import PROVIDERS, ExampleContext, RunContext, provider
from kdseg.lidar_data import LidarBatch
from kdseg.segmenter import build_segmenter
from kdseg.teachers import TEACHERS, TeacherSpec, build_teacher

from .method_harness import NUM_CLASSES, SyntheticSampler


def _example(name: str, tmp: Path):
    ctx = ExampleContext(tmp, NUM_CLASSES, lambda: build_segmenter("minkunet_tiny", NUM_CLASSES))
    return provider(name).example(ctx)


@pytest.mark.parametrize("name", PROVIDERS.names())
def test_provider_example_gives_extras_and_a_record(name, tmp_path):
    p = provider(name)
    assert p.name == name and p.help
    bound = _example(name, tmp_path)
    json.dumps(bound.record())  # kept in the run configuration
    sampler = SyntheticSampler([bound])
    rng = np.random.default_rng(0)
    batch = LidarBatch(
        labelled=[sampler.draw(sampler.labelled_pool, rng, False)],
        unlabelled=[sampler.draw(sampler.unlabelled_pool, rng, True)],
    )
    bound.batch_extras(batch, sampler, rng)
    for cloud in batch.labelled + batch.unlabelled:
        n = cloud.points.shape[0]
        assert set(bound.point_keys) <= set(cloud.extras)
        for key in cloud.point_keys:  # per-point extras follow the points
            assert cloud.extras[key].shape[0] == n, key
            assert cloud.select(torch.arange(n) < 10).extras[key].shape[0] == 10


@pytest.mark.parametrize("name", PROVIDERS.names())
def test_provider_workflow_side(name):
    """rule_inputs names files (relative to the working directory) that cli_value turns into
    the value --input takes; settings are checked with the options helper."""
    p = provider(name)
    settings = {"variant": "teacher_variant"} if name == "teacher_checkpoint" else {}
    from kdseg.inputs import JobContext

    ctx = JobContext({}, "smoke", p.example_job(), p.settings(settings, "x"))
    paths = p.rule_inputs(ctx)
    assert all(not Path(v).is_absolute() and v.startswith("results/smoke/") for v in paths.values())
    value = p.cli_value(paths) if paths else None
    assert (value is None) == (not p.value_help)
    with pytest.raises(ConfigError, match=r"^config key 'x\.nope'"):
        p.settings({**settings, "nope": 1}, "x")


def test_teacher_checkpoint_loads_another_runs_network(tmp_path):
    from kdseg.record import RunRecord

    net = build_segmenter("minkunet_tiny", NUM_CLASSES)
    run = tmp_path / "teacher_run"
    run.mkdir()
    ctx = RunContext("m", tmp_path, None)  # type: ignore[arg-type]
    with pytest.raises(DataFormatError, match="cannot read run record"):
        provider("teacher_checkpoint").bind(str(run), ctx)
    config = {"method": "sup_only", "variant": "t", "dataset": "d", "budget": "full", "seed": 0}
    RunRecord(
        miou=0.5, accuracy=0.5, per_class_iou={}, confusion_matrix=None, deployed="student",
        network=net.spec(), networks={}, wall_time_s=1.0, parameters=1,
        inference_latency_ms=1.0, config=config | {"scale": "smoke"},
    ).write(run / "metrics.json")  # fmt: skip
    with pytest.raises(DataFormatError, match=r"model\.pt: run output does not exist"):
        provider("teacher_checkpoint").bind(str(run), ctx)
    torch.save(net.state_dict(), run / "model.pt")
    bound = provider("teacher_checkpoint").bind(str(run), ctx)
    assert bound.record()["variant"] == "t" and len(bound.record()["model_sha256"]) == 64
    loaded = bound.load_network().state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in net.state_dict().items())
    torch.save({"wrong": torch.zeros(1)}, run / "model.pt")
    with pytest.raises(DataFormatError, match="does not fit its network spec"):
        provider("teacher_checkpoint").bind(str(run), ctx).load_network()


class _Method(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.student = build_segmenter("minkunet_tiny", NUM_CLASSES)


@pytest.mark.parametrize("kind", TEACHERS.names())
def test_teacher_kind_builds_a_frozen_network(kind, tmp_path):
    """Every teacher kind: a network without gradients, a state that round-trips, and the
    values it logs after a step."""
    method = _Method()
    inputs = {"teacher_checkpoint": _example("teacher_checkpoint", tmp_path)}
    teacher = build_teacher(TeacherSpec(kind), method, inputs)
    assert teacher is not None and teacher.kind == kind
    assert not any(p.requires_grad for p in teacher.network.parameters())
    logged = teacher.after_step(method)
    assert all(isinstance(v, float) for v in logged.values())
    teacher.load_state_dict(teacher.state_dict())
    with pytest.raises(ConfigError, match=rf"'teacher\.{kind}\.nope'"):
        build_teacher(TeacherSpec(kind, {"nope": 1}), method, inputs)


def test_frozen_teacher_needs_its_input():
    with pytest.raises(ConfigError, match=r"'inputs\.teacher_checkpoint': a frozen teacher"):
        build_teacher(TeacherSpec("frozen"), _Method(), {})
