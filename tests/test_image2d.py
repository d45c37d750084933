"""The IGNet 2D teacher: network, source training, adaptation, per-point features and cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from kdseg.datasets.semantickitti import Calibration, SemanticKITTI
from kdseg.errors import ConfigError, DataFormatError
from kdseg.geometry import project_points
from kdseg.image2d import (
    TeacherOptions,
    build_model,
    cache_features,
    load_point_features,
    load_teacher,
    point_features,
    read_manifest,
    sample_features,
    train_teacher,
)
from kdseg.image2d import data as data2d
from kdseg.image2d.adapt import class_thresholds, pseudo_labels
from kdseg.image2d.features import cache_path
from kdseg.image2d.model import Teacher2D, make_teacher, save_teacher
from kdseg.image2d.trainers import SourceTraining, fit_phase

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {
    "source_iters": 4,
    "adapt_iters": 3,
    "batch_size": 2,
    "crop_height": 32,
    "crop_width": 64,
    "threshold_refresh": 2,
    "feature_dim": 8,
}


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kdseg.datasets.synthetic_street import StreetConfig, generate

    root = tmp_path_factory.mktemp("street")
    generate(root, StreetConfig.for_scale("smoke"))
    return root


@pytest.fixture(scope="module")
def trained(street: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("teacher")
    torch.set_num_threads(1)
    metrics = train_teacher(street, out, TeacherOptions(**TINY))
    return out, metrics


# ------------------------------------------------------------------------------ network
def test_network_shapes_and_stride_check():
    model = build_model("tiny_fpn", feature_dim=24).eval()
    out = model(torch.rand(2, 3, 48, 160))
    assert out["features"].shape == (2, 24, 12, 40)
    assert out["logits"].shape == (2, 19, 48, 160)
    small = build_model("small_fpn", feature_dim=64).eval()
    assert small(torch.rand(1, 3, 32, 64))["features"].shape == (1, 64, 8, 16)
    with pytest.raises(ValueError, match="multiple of 16"):
        model(torch.rand(1, 3, 50, 160))
    with pytest.raises(ValueError, match="unknown 2D network"):
        build_model("resnet9000", 8)


def test_options_are_validated():
    with pytest.raises(ConfigError, match="adaptation"):
        TeacherOptions(adaptation="tent")
    with pytest.raises(ConfigError, match="crop_width"):
        TeacherOptions(crop_width=100)
    with pytest.raises(ConfigError, match="lr_typo"):
        TeacherOptions.from_dict({"lr_typo": 1.0})
    assert set(TeacherOptions.help()) == set(TeacherOptions().to_dict())


def test_options_per_scale():
    default = TeacherOptions.for_scale("default")
    assert (default.crop_height, default.crop_width) == (64, 128)  # 240 x 72 default images
    assert (default.source_iters, default.adapt_iters) == (1600, 800)
    smoke = TeacherOptions.for_scale("smoke", adaptation="none")
    assert (smoke.source_iters, smoke.adapt_iters, smoke.feature_dim) == (4, 3, 16)
    assert smoke.adaptation == "none" and smoke.crop_width == 64
    assert TeacherOptions.for_scale("paper").arch == "small_fpn"
    with pytest.raises(ConfigError, match="scale"):
        TeacherOptions.for_scale("huge")
    with pytest.raises(ConfigError, match="source_itres"):
        TeacherOptions.for_scale("smoke", source_itres=2)


def test_training_step_lowers_loss_on_a_fixed_batch(street: Path, tmp_path: Path):
    """Source training runs through the suite's Trainer (one training loop)."""
    torch.manual_seed(0)
    images, labels = data2d.load_source(street)
    opts = TeacherOptions(**{**TINY, "weight_decay": 0.0})
    x, y = data2d.source_batch(images, labels, opts.augment(), batch_size=2, seed=0, step=0)
    method = SourceTraining(build_model("tiny_fpn", 8))
    trainer = fit_phase(method, lambda step: (x, y), opts, 8, 3e-3, tmp_path)
    first, last = method.first_last()
    assert last < 0.9 * first, (first, last)
    assert trainer.step == 8 and not trainer.checkpoint_path.exists()
    assert (tmp_path / "train_log.jsonl").is_file()


# ---------------------------------------------------------------------- bilinear sampling
def test_sample_features_against_hand_computation():
    # one channel, h=2, w=4 map over an 8x4 image: feature pixel k covers image columns [2k, 2k+2)
    fmap = torch.tensor([[[1.0, 5.0, 2.0, 7.0], [3.0, 0.0, 9.0, 4.0]]])
    uv = torch.tensor([[2.5, 1.5], [5.5, 2.5], [0.5, 0.5], [3.0, 1.0], [7.5, 3.5]])
    got = sample_features(fmap, uv, (8, 4))[:, 0]
    # centre of pixel (2, 1) -> feature coords (0.75, 0.25):
    #   0.75 * (0.25 * 1 + 0.75 * 5) + 0.25 * (0.25 * 3 + 0.75 * 0) = 3.1875
    # centre of pixel (5, 2) -> (2.25, 0.75):
    #   0.25 * (0.75 * 2 + 0.25 * 7) + 0.75 * (0.75 * 9 + 0.25 * 4) = 6.625
    # centre of pixel (0, 0) -> (-0.25, -0.25): border -> f[0, 0] = 1
    # image point (3, 1) is feature pixel (1, 0)'s centre -> 5;  pixel (7, 3) -> border f[1, 3]
    expected = torch.tensor([3.1875, 6.625, 1.0, 5.0, 4.0])
    torch.testing.assert_close(got, expected)


class _FixedNet(nn.Module):
    """Returns fixed features ``(1, C, H/4, W/4)`` and logits ``(1, K, H, W)``."""

    def __init__(self, feats: torch.Tensor, logits: torch.Tensor) -> None:
        super().__init__()
        self.feats, self.logits = feats, logits
        self.feature_dim, self.num_classes = feats.shape[1], logits.shape[1]

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": self.feats, "logits": self.logits}


def _pinhole() -> Calibration:
    """f = 10 px, principal point (16, 8), LiDAR x forward / y left / z up -> camera."""
    P2 = np.array([[10.0, 0, 16, 0], [0, 10.0, 8, 0], [0, 0, 1, 0]])
    Tr = np.array([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    return Calibration(P=(P2, P2, P2, P2), Tr=Tr)


def _bilinear_ref(fmap: np.ndarray, u: float, v: float, stride: int) -> np.ndarray:
    """Independent reference: feature pixel k has its centre at image coordinate (k+0.5)·stride."""
    _, h, w = fmap.shape
    x = np.clip(u / stride - 0.5, 0, w - 1)
    y = np.clip(v / stride - 0.5, 0, h - 1)
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    ax, ay = x - x0, y - y0
    top = (1 - ax) * fmap[:, y0, x0] + ax * fmap[:, y0, x1]
    bottom = (1 - ax) * fmap[:, y1, x0] + ax * fmap[:, y1, x1]
    return (1 - ay) * top + ay * bottom


def test_point_features_validity_and_pixel_centres():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(1, 3, 4, 8, generator=gen)
    logits = torch.randn(1, 19, 16, 32, generator=gen)
    teacher = make_teacher(_FixedNet(feats, logits), "fixed", {})
    # LiDAR points: (u, v) at depth d is x = d, y = -(u - 16) d / 10, z = -(v - 8) d / 10
    uvd = [(5.3, 6.9, 4.0), (20.0, 3.2, 7.0), (31.9, 15.9, 2.0), (5.0, 6.0, -3.0), (40.0, 8.0, 5.0)]
    pts = np.array([[d, -(u - 16) * d / 10, -(v - 8) * d / 10] for u, v, d in uvd])
    pf = point_features(teacher, np.zeros((16, 32, 3), np.uint8), pts, _pinhole())
    np.testing.assert_array_equal(pf.valid, [True, True, True, False, False])  # behind / outside
    assert (pf.features[~pf.valid] == 0).all() and (pf.probs[~pf.valid] == 0).all()
    assert (pf.pred[~pf.valid] == 255).all()
    proj = project_points(pts, _pinhole().P2, _pinhole().Tr, (32, 16))
    for n in np.flatnonzero(pf.valid):
        col, row = np.floor(proj.uv[n]).astype(int)
        ref = _bilinear_ref(feats[0].numpy(), col + 0.5, row + 0.5, stride=4)
        np.testing.assert_allclose(pf.features[n], ref, rtol=1e-5, atol=1e-6)
        probs = logits[0, :, row, col].softmax(0).numpy()
        np.testing.assert_allclose(pf.probs[n], probs, rtol=1e-5, atol=1e-6)
        assert pf.pred[n] == probs.argmax()


# ---------------------------------------------------------------------------- training
def test_train_teacher_writes_checkpoint_and_metrics(trained):
    out, metrics = trained
    state = torch.load(out / "teacher.pt", weights_only=True)
    assert state["arch"] == "tiny_fpn" and state["feature_dim"] == 8
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["miou_before_adaptation"] == pytest.approx(metrics["miou_before_adaptation"])
    assert 0.0 <= on_disk["miou_after_adaptation"] <= 1.0
    assert on_disk["options"]["adaptation"] == "self_training"
    assert on_disk["parameters"] > 0 and on_disk["wall_time_s"]["total"] > 0
    assert on_disk["adapt_sequences"] == ["00"] and on_disk["eval_sequences"] == ["08"]
    assert len(on_disk["before_adaptation"]["per_class_iou"]) == 19


def test_same_seed_same_weights(street: Path, tmp_path: Path):
    def weights(seed: int, name: str) -> dict[str, torch.Tensor]:
        opts = TeacherOptions(**{**TINY, "seed": seed, "adapt_iters": 2})
        train_teacher(street, tmp_path / name, opts)
        return torch.load(tmp_path / name / "teacher.pt", weights_only=True)["state_dict"]

    a, b, c = weights(3, "a"), weights(3, "b"), weights(4, "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_interrupted_teacher_resumes_to_the_same_weights(street: Path, tmp_path: Path, monkeypatch):
    """Both phases run through the suite's Trainer: an interrupt during adaptation leaves its
    checkpoint, and running the same command again resumes it to the uninterrupted weights."""
    from kdseg.image2d.trainers import SelfTraining

    opts = TeacherOptions(**{**TINY, "adapt_iters": 4})
    whole = train_teacher(street, tmp_path / "whole", opts)
    original = SelfTraining.training_step
    calls = {"n": 0}

    def interrupt_at_step_2(self, batch, step):
        if step == 2 and calls["n"] == 0:
            calls["n"] += 1
            raise KeyboardInterrupt
        return original(self, batch, step)

    monkeypatch.setattr(SelfTraining, "training_step", interrupt_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        train_teacher(street, tmp_path / "cut", opts)
    assert (tmp_path / "cut" / "adaptation" / "checkpoint_last.pt").is_file()
    resumed = train_teacher(street, tmp_path / "cut", opts)
    assert resumed["teacher_sha256"] == whole["teacher_sha256"]
    assert resumed["adaptation_log"] == whole["adaptation_log"]
    assert not (tmp_path / "cut" / "adaptation" / "checkpoint_last.pt").exists()


def test_adaptation_never_reads_training_labels_2(street: Path, tmp_path: Path, monkeypatch):
    root = tmp_path / "street"
    shutil.copytree(street, root)
    for f in (root / "dataset" / "sequences" / "00" / "labels_2").glob("*.png"):
        f.unlink()
    read: list[Path] = []
    original = data2d.read_label_image
    monkeypatch.setattr(data2d, "read_label_image", lambda p: read.append(Path(p)) or original(p))
    metrics = train_teacher(root, tmp_path / "t", TeacherOptions(**TINY))
    assert metrics["miou_after_adaptation"] is not None
    assert read and all(p.parent.parent.name == "08" for p in read if "labels_2" in p.parts)


def test_real_data_recipe_source_elsewhere_and_no_target_labels(street: Path, tmp_path: Path):
    """Real data: source images from another root (the synthetic data), no labels_2 at all."""
    target = tmp_path / "real"
    shutil.copytree(street / "dataset", target / "dataset")
    shutil.copy(street / "meta.json", target / "meta.json")
    for f in target.glob("dataset/sequences/*/labels_2/*.png"):
        f.unlink()
    with pytest.raises(DataFormatError, match="no source images"):
        train_teacher(target, tmp_path / "t0", TeacherOptions(**TINY))
    m = train_teacher(target, tmp_path / "t", TeacherOptions(**TINY), source_root=street)
    assert m["source_root"] == str(street) and m["scored"] is False
    assert m["miou"] is None and m["miou_before_adaptation"] is None
    assert m["adapt_sequences"] == ["00"] and m["num_eval_images"] == 0
    assert load_teacher(tmp_path / "t" / "teacher.pt").feature_dim == TINY["feature_dim"]


def test_adaptation_none_skips_it(street: Path, tmp_path: Path):
    m = train_teacher(street, tmp_path, TeacherOptions(**{**TINY, "adaptation": "none"}))
    assert m["miou_after_adaptation"] is None and m["miou"] == m["miou_before_adaptation"]


def test_class_thresholds_and_pseudo_labels():
    # class 0 on the left half with confidences rising to the right, class 1 on the right half
    probs = torch.zeros(1, 2, 1, 8)
    probs[0, 0, 0, :4] = torch.tensor([0.6, 0.7, 0.8, 0.9])
    probs[0, 1, 0, 4:] = torch.tensor([0.95, 0.96, 0.97, 0.99])
    probs[0, 1, 0, :4] = 1 - probs[0, 0, 0, :4]
    probs[0, 0, 0, 4:] = 1 - probs[0, 1, 0, 4:]
    model = _FixedNet(torch.zeros(1, 1, 1, 1), probs.log())
    images = torch.zeros(1, 3, 1, 8, dtype=torch.uint8)  # stride padding is not needed by _FixedNet
    thr = class_thresholds(model, images, top_p=0.5, cap=0.9, num_classes=3)
    np.testing.assert_allclose(thr, [0.75, 0.9, 0.9], atol=1e-6)  # median 0.75, capped, absent
    labels = pseudo_labels(probs, torch.tensor(thr))
    assert labels[0, 0].tolist() == [255, 255, 0, 0, 1, 1, 1, 1]


# ----------------------------------------------------------------------- checkpoints
def test_bad_checkpoints_raise_clear_errors(tmp_path: Path, trained):
    with pytest.raises(DataFormatError, match="does not exist"):
        load_teacher(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(DataFormatError, match=r"junk\.pt"):
        load_teacher(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(DataFormatError, match="not a kdseg 2D teacher"):
        load_teacher(foreign)
    state = torch.load(trained[0] / "teacher.pt", weights_only=True)
    state["feature_dim"] = 16
    mismatched = tmp_path / "mismatched.pt"
    torch.save(state, mismatched)
    with pytest.raises(DataFormatError, match="weights do not fit"):
        load_teacher(mismatched)


# ------------------------------------------------------------------------------ cache
def test_cache_round_trip_idempotence_and_staleness(street: Path, tmp_path: Path, trained):
    teacher = load_teacher(trained[0] / "teacher.pt")
    cache = tmp_path / "cache"
    frames = [("00", 0), ("08", 2)]
    first = cache_features(street, teacher, cache, frames)
    assert (first["written"], first["reused"]) == (2, 0)
    assert read_manifest(cache)["teacher_sha256"] == teacher.fingerprint
    ds = SemanticKITTI(street)
    for seq, idx in frames:
        frame = ds.frame(seq, idx, with_image=True, with_labels=False)
        direct = point_features(teacher, frame.image, frame.points, frame.calib)
        got = load_point_features(cache, seq, idx, frame.num_points, teacher.fingerprint)
        np.testing.assert_array_equal(got.valid, direct.valid)
        np.testing.assert_array_equal(got.valid, frame.image_projection().valid)
        np.testing.assert_allclose(got.features, direct.features, rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(got.probs, direct.probs, atol=1e-3)
        np.testing.assert_array_equal(got.pred, direct.pred)
        message = rf"{idx:06d}\.npz: cached for {frame.num_points} points but the scan has"
        with pytest.raises(DataFormatError, match=message):
            load_point_features(cache, seq, idx, frame.num_points + 1)
    mtime = cache_path(cache, "00", 0).stat().st_mtime_ns
    again = cache_features(street, trained[0] / "teacher.pt", cache, frames)
    assert (again["written"], again["reused"]) == (0, 2)
    assert cache_path(cache, "00", 0).stat().st_mtime_ns == mtime
    # another teacher: the manifest is stale, every frame is rewritten
    model = build_model("tiny_fpn", 8)
    save_teacher(tmp_path / "other.pt", model, "tiny_fpn", {"seed": 99})
    other: Teacher2D = load_teacher(tmp_path / "other.pt")
    redo = cache_features(street, other, cache, frames)
    assert (redo["written"], redo["reused"]) == (2, 0)
    assert read_manifest(cache)["teacher_sha256"] == other.fingerprint
    with pytest.raises(DataFormatError, match="another 2D teacher"):
        load_point_features(cache, "00", 0, ds.frame("00", 0).num_points, teacher.fingerprint)
