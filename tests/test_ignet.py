"""IGNet: FOVMix, its losses, its switches, inference parity and a smoke run end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from kdseg import IGNORE_INDEX
from kdseg.budgets import make_split
from kdseg.cli import main
from kdseg.datasets.semantickitti import SemanticKITTI
from kdseg.datasets.splits import split_frames
from kdseg.errors import ConfigError, DataFormatError
from kdseg.inputs import RunContext, bind_inputs
from kdseg.lidar_data import Cloud, FrameStore, LidarBatch, LidarBatches
from kdseg.losses import feature_distillation, one_way_info_nce
from kdseg.methods.base import build_method
from kdseg.methods.ignet import camera_frustum, fov_mix, in_frustum, rotate_z
from kdseg.run import train_run

from .method_harness import example_batch, example_method, with_guidance
from .method_harness import synthetic_cloud as _cloud

pytestmark = pytest.mark.usefixtures("single_thread")
C = 8


def _guided(seed: int, n: int = 1500) -> Cloud:
    return with_guidance(_cloud(seed, n), C, seed)


# ------------------------------------------------------------------------------------ FOVMix
def _field(cloud: Cloud, name: str) -> torch.Tensor:
    return cloud.labels if name == "labels" else cloud.extras[name]


def test_fov_mix_moves_points_labels_and_guidance_together():
    a, b = _guided(1), _guided(2)
    a.extras["features_2d"][:, 0] = torch.arange(1500, dtype=torch.float32)  # row ids travel
    b.extras["partner"] = a  # a per-cloud extra: not carried into the mix
    theta = math.pi / 2
    mixed = fov_mix(a, b, theta)
    valid_a = a.extras["valid_2d"]
    frustum = camera_frustum(a.points, valid_a)
    assert frustum is not None and abs(frustum.azimuth) < 0.05  # a's camera looks along +x
    assert 0.7 < frustum.half_width <= math.pi / 4 + 1e-6
    inside_b = in_frustum(b.points, frustum.rotated(theta))
    n_a, n_keep = int(valid_a.sum()), int((~inside_b).sum())
    assert int(inside_b.sum()) > 50, "B must lose the points of the rotated frustum"
    assert mixed.points.shape[0] == n_keep + n_a
    assert set(mixed.extras) == {"features_2d", "valid_2d", "pred_2d"}
    for field in ("labels", "features_2d", "valid_2d", "pred_2d"):
        got = _field(mixed, field)
        assert got.shape[0] == mixed.points.shape[0]
        assert torch.equal(got[:n_keep], _field(b, field)[~inside_b]), field
        assert torch.equal(got[n_keep:], _field(a, field)[valid_a]), field
    torch.testing.assert_close(mixed.points[n_keep:], rotate_z(a.points[valid_a], theta))
    # the pasted frustum now looks along +y; none of B's kept points lies inside it
    pasted = mixed.points[n_keep:]
    azimuth = torch.atan2(pasted[:, 1], pasted[:, 0])
    assert float((azimuth - math.pi / 2).abs().max()) <= math.pi / 4 + 1e-4
    assert not bool(in_frustum(mixed.points[:n_keep], frustum.rotated(theta)).any())
    assert mixed.frame == b.frame
    assert torch.equal(mixed.points[n_keep:, 3], a.points[valid_a, 3])  # remission kept


def test_frustum_across_the_back_and_without_camera_points():
    a = _guided(3)
    a.points = rotate_z(a.points, math.pi)  # the camera sector now straddles ±π
    frustum = camera_frustum(a.points, a.extras["valid_2d"])
    assert frustum is not None and abs(abs(frustum.azimuth) - math.pi) < 0.05
    assert frustum.half_width <= math.pi / 4 + 1e-6
    assert bool(in_frustum(a.points, frustum)[a.extras["valid_2d"]].all())
    blind = _guided(4)
    blind.extras["valid_2d"] = torch.zeros_like(blind.extras["valid_2d"])
    b = _guided(5)
    assert fov_mix(blind, b, 1.0) is b
    with pytest.raises(ValueError, match="guidance"):
        fov_mix(_cloud(6), b, 1.0)


# ------------------------------------------------------------------------------------ losses
def test_feature_distillation_by_hand():
    s = torch.tensor([[1.0, 2.0], [0.0, 3.0]], requires_grad=True)
    t = torch.tensor([[0.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss = feature_distillation(s, t, "mse")
    assert float(loss.detach()) == pytest.approx((5.0 + 4.0) / 2)
    loss.backward()
    assert t.grad is None and s.grad is not None  # stop-gradient on the 2D side
    s, t = s.detach(), t.detach()
    assert float(feature_distillation(t, t.clone(), "mse")) == 0.0
    assert float(feature_distillation(s, 2 * s, "cosine")) == pytest.approx(0.0, abs=1e-6)
    orth = feature_distillation(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 5.0]]), "cosine")
    assert float(orth) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="mse"):
        feature_distillation(s, t, "l1")


def test_info_nce_by_hand():
    b, tau = 6, 0.07
    same = torch.ones(b, 4)
    assert float(one_way_info_nce(same, same, tau)) == pytest.approx(math.log(b), rel=1e-5)
    eye = torch.eye(b)
    expected = math.log(1 + (b - 1) * math.exp(-1 / 0.5))  # positive cos 1, negatives cos 0
    assert float(one_way_info_nce(eye, eye, 0.5)) == pytest.approx(expected, rel=1e-5)
    # class-aware: with one class every key is a positive -> log 1 = 0
    one_class = torch.zeros(b, dtype=torch.int64)
    assert float(one_way_info_nce(eye, eye, tau, one_class)) == pytest.approx(0.0, abs=1e-6)
    # two classes of 3: positives of i are the 3 keys of its class (cos 1, 0, 0)
    two = torch.tensor([0, 0, 0, 1, 1, 1])
    e = math.exp(1 / 0.5)
    expected = -math.log((e + 2) / (e + 5))
    assert float(one_way_info_nce(eye, eye, 0.5, two)) == pytest.approx(expected, rel=1e-5)
    z = torch.randn(b, 4, requires_grad=True)
    u = torch.randn(b, 4, requires_grad=True)
    one_way_info_nce(z, u, tau).backward()
    assert u.grad is None and z.grad is not None  # one-way: no gradient into the 2D side


# ---------------------------------------------------------------------------------- switches
def _terms(options: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    method, inputs = example_method("ignet", options)
    assert method.opts.feature_dim_2d == C  # fixed by the features_2d input
    method.train()
    return method.training_step(example_batch(method, inputs), step=0)


def test_each_weight_switches_its_term():
    full = _terms({})
    assert set(full) == {"sup_ce", "consistency", "fd", "contrastive"}
    assert "fd" not in _terms({"fd_weight": 0.0})
    assert "contrastive" not in _terms({"contrastive_weight": 0.0})
    assert set(_terms({"fd_weight": 0.0, "contrastive_weight": 0.0})) == {"sup_ce", "consistency"}
    no_mt = _terms({"consistency_weight": 0.0})
    assert "consistency" not in no_mt and {"fd", "contrastive"} <= set(no_mt)
    assert build_method("ignet", 19, {"consistency_weight": 0.0}).teacher_spec() is None
    twice = _terms({"fd_weight": 2.0, "contrastive_weight": 0.2})
    assert twice["fd"].item() == pytest.approx(2 * full["fd"].item(), rel=1e-5)
    assert twice["contrastive"].item() == pytest.approx(2 * full["contrastive"].item(), rel=1e-5)
    assert _terms({"fd_loss": "mse"})["fd"].item() != pytest.approx(full["fd"].item())


def test_fovmix_probability_switch(monkeypatch):
    seen: list[list[int]] = []

    def sizes(options: dict) -> list[int]:
        torch.manual_seed(0)
        method, inputs = example_method("ignet", {"consistency_weight": 0.0, **options})
        method.student.register_forward_pre_hook(
            lambda _m, args: seen.append([c.shape[0] for c in args[0]])
        )
        batch = example_batch(method, inputs)
        method.training_step(batch, step=0)
        return [c.points.shape[0] for c in batch.labelled + batch.unlabelled]

    original = sizes({"fovmix_prob": 0.0})
    assert seen[-1] == original
    sizes({"fovmix_prob": 1.0})
    assert seen[-1] != original and len(seen[-1]) == len(original)


def test_contrastive_sampling_is_capped_and_seeded():
    method = build_method("ignet", 19, {"feature_dim_2d": C, "contrastive_samples": 16})
    g, f = torch.randn(100, C), torch.randn(100, C)
    pred = torch.zeros(100, dtype=torch.int64)
    torch.manual_seed(1)
    a = method.contrastive(g, f, pred, [60, 40])
    torch.manual_seed(1)
    b = method.contrastive(g, f, pred, [60, 40])
    torch.manual_seed(2)
    c = method.contrastive(g, f, pred, [60, 40])
    assert float(a) == float(b) and float(a) != float(c)
    assert float(a) <= math.log(16) + 1.0 / 0.07 * 2  # B = 16 keys per anchor, not 60
    everything = build_method("ignet", 19, {"feature_dim_2d": C})
    full = everything.contrastive(g[:60], f[:60], pred[:60], [60])
    assert float(full) == pytest.approx(float(one_way_info_nce(g[:60], f[:60])), rel=1e-5)


def test_options_are_checked():
    with pytest.raises(ConfigError, match=r"ignet\.fd_loss"):
        build_method("ignet", 19, {"fd_loss": "l1"})
    with pytest.raises(ConfigError, match=r"ignet\.fovmix_prob"):
        build_method("ignet", 19, {"fovmix_prob": 1.5})
    method = build_method("ignet", 19, {"feature_dim_2d": C})
    batch = LidarBatch(labelled=[_cloud(0)], unlabelled=[_cloud(1, labelled=False)])
    with pytest.raises(ConfigError, match=r"inputs\.features_2d"):
        method.training_step(batch, 0)


def test_inference_parity_with_sup_only():
    ignet = build_method("ignet", 19, {"feature_dim_2d": 48})
    sup = build_method("sup_only", 19)
    deployed = sum(p.numel() for p in ignet.inference_network().parameters())
    assert deployed == sum(p.numel() for p in sup.inference_network().parameters())
    head = sum(p.numel() for p in ignet.head.parameters())
    assert head > 0 and sum(p.numel() for p in ignet.parameters()) == deployed + head
    assert ignet.inference_network() is ignet.student
    assert not any(m is ignet.head for m in ignet.inference_network().modules())


# -------------------------------------------------------------------------- end to end (smoke)
@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict[str, Path]:
    """Smoke data -> smoke teacher (`kdseg teacher`) -> feature cache (`kdseg features`)."""
    from kdseg.datasets.synthetic_street import StreetConfig, generate

    tmp = tmp_path_factory.mktemp("ignet")
    data = generate(tmp / "street", StreetConfig.for_scale("smoke"))
    teacher_dir, features = tmp / "teacher2d", tmp / "teacher2d" / "features"
    assert (
        main(["teacher", "--data", str(data), "--out", str(teacher_dir), "--scale", "smoke"]) == 0
    )
    teacher = teacher_dir / "teacher.pt"
    assert (
        main(["features", "--data", str(data), "--teacher", str(teacher), "--out", str(features)])
        == 0
    )
    return {"data": data, "teacher": teacher, "features": features, "tmp": tmp}


def test_teacher_command_writes_and_adopts(pipeline, tmp_path, capsys):
    metrics = json.loads((pipeline["teacher"].parent / "metrics.json").read_text())
    assert metrics["source"] == "trained" and metrics["options"]["source_iters"] == 4
    assert metrics["miou_after_adaptation"] is not None
    args = ["teacher", "--data", str(pipeline["data"]), "--out", str(tmp_path / "adopted")]
    assert main([*args, "--checkpoint", str(pipeline["teacher"])]) == 0
    adopted = json.loads((tmp_path / "adopted" / "metrics.json").read_text())
    assert (tmp_path / "adopted" / "teacher.pt").read_bytes() == pipeline["teacher"].read_bytes()
    assert (
        adopted["source"] == "checkpoint" and adopted["teacher_sha256"] == metrics["teacher_sha256"]
    )
    assert adopted["miou"] == pytest.approx(metrics["miou"])  # the same network, scored again
    assert (
        main(
            [*args[:-1], str(tmp_path / "plain"), "--option", "adaptation=none", "--scale", "smoke"]
        )
        == 0
    )
    assert (
        json.loads((tmp_path / "plain" / "metrics.json").read_text())["miou_after_adaptation"]
        is None
    )
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"no")
    capsys.readouterr()
    assert main([*args, "--checkpoint", str(junk)]) == 2  # one line naming the file
    assert capsys.readouterr().err.startswith(f"kdseg teacher: error: {junk}: ")


def test_batches_carry_aligned_guidance(pipeline):
    from kdseg.image2d import load_point_features

    data, features = pipeline["data"], pipeline["features"]
    split = make_split("street", split_frames(data, "train"), "scans-50", seed=0)
    ctx = RunContext("ignet", data, split)
    bound = bind_inputs(["features_2d"], {"features_2d": str(features)}, ctx)
    batch = LidarBatches(FrameStore(data), split, 1, 1, seed=0, inputs=list(bound.values()))(3)
    for cloud in batch.labelled + batch.unlabelled:
        seq, idx = cloud.frame
        frame = SemanticKITTI(data).frame(seq, idx, with_image=True, with_labels=False)
        ref = load_point_features(features, seq, idx, frame.num_points)
        f2d, valid, pred = (cloud.extras[k] for k in ("features_2d", "valid_2d", "pred_2d"))
        assert f2d.shape == (frame.num_points, 16)
        assert cloud.point_keys == {"features_2d", "valid_2d", "pred_2d"}
        assert torch.equal(valid, torch.from_numpy(frame.image_projection().valid))
        np.testing.assert_array_equal(f2d.numpy(), ref.features)
        np.testing.assert_array_equal(pred.numpy(), ref.pred)
        assert bool((pred[~valid] == IGNORE_INDEX).all())
    plain = LidarBatches(FrameStore(data), split, 1, 1, seed=0)(3)
    assert plain.labelled[0].extras == {}
    with pytest.raises(DataFormatError, match="manifest"):
        bind_inputs(["features_2d"], {"features_2d": str(pipeline["tmp"])}, ctx)


def test_ignet_smoke_run_end_to_end(pipeline, tmp_path):
    data = pipeline["data"]
    split = make_split("street", split_frames(data, "train"), "scribbles", seed=0)
    inputs = {"features_2d": str(pipeline["features"])}
    with pytest.raises(ConfigError, match=r"inputs\.features_2d"):
        train_run(data, split, "ignet", tmp_path / "none", scale="smoke")
    with pytest.raises(ConfigError, match="feature_dim_2d"):
        train_run(
            data, split, "ignet", tmp_path / "bad", scale="smoke",
            options={"feature_dim_2d": 48}, inputs=inputs,
        )  # fmt: skip
    runs = tmp_path / "runs"
    m = train_run(data, split, "ignet", runs / "ignet", scale="smoke", inputs=inputs)
    assert m["config"]["options"]["feature_dim_2d"] == 16
    assert (
        m["config"]["inputs"]["features_2d"]["teacher_sha256"]
        == json.loads((pipeline["features"] / "manifest.json").read_text())["teacher_sha256"]
    )
    log = (runs / "ignet" / "train_log.jsonl").read_text().splitlines()
    logged = [json.loads(line).get("metrics", {}) for line in log]
    assert any("loss/fd" in r for r in logged) and any("loss/contrastive" in r for r in logged)
    parity = m["parity"]
    assert parity["parameters"] == parity["parameters_reference"] == m["parameters"]
    assert parity["reference"] == "network spec"
    assert parity["parameters_ratio"] == 1.0 and parity["latency_ratio"] > 0
    assert parity["latency_ms"] == m["inference_latency_ms"]
    sup = train_run(data, split, "sup_only", runs / "sup_only", scale="smoke", inputs=inputs)
    assert sup["parity"]["parameters_ratio"] == 1.0 and "inputs" not in sup["config"]
    assert sup["parameters"] == m["parameters"]
    out = tmp_path / "fig"
    args = ["ignet-figure", "--data", str(data), "--teacher", str(pipeline["teacher"])]
    args += ["--sup-only", str(runs / "sup_only"), "--ignet", str(runs / "ignet")]
    assert main([*args, "--png", str(out / "f.png"), "--pdf", str(out / "f.pdf")]) == 0
    from PIL import Image

    assert Image.open(out / "f.png").size[0] > 800
    assert (out / "f.pdf").read_bytes()[:4] == b"%PDF"


def test_interrupted_ignet_run_resumes_to_identical_metrics(pipeline, tmp_path, monkeypatch):
    """FOVMix and the contrastive sampling draw from torch's RNG: resume must stay exact."""
    data = pipeline["data"]
    split = make_split("street", split_frames(data, "train"), "scans-50", seed=1)
    kwargs = {
        "scale": "smoke",
        "seed": 1,
        "trainer_overrides": {"iterations": 4},
        "options": {"fovmix_prob": 1.0, "contrastive_samples": 64},
        "inputs": {"features_2d": str(pipeline["features"])},
    }
    whole = train_run(data, split, "ignet", tmp_path / "whole", **kwargs)
    original = LidarBatches.__call__
    calls = {"n": 0}

    def interrupt_at_step_2(self, step):
        if step == 2 and calls["n"] == 0:
            calls["n"] += 1
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(LidarBatches, "__call__", interrupt_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        train_run(data, split, "ignet", tmp_path / "resumed", **kwargs)
    resumed = train_run(data, split, "ignet", tmp_path / "resumed", **kwargs)
    assert resumed["confusion_matrix"] == whole["confusion_matrix"]

    def losses(run: str) -> list[float]:
        lines = (tmp_path / run / "train_log.jsonl").read_text().splitlines()
        records = (json.loads(x).get("metrics", {}) for x in lines)
        return [m["loss/total"] for m in records if "loss/total" in m]

    assert len(losses("whole")) == 4 and losses("resumed") == losses("whole")
