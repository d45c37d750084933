"""The semi-supervised baselines against their reference implementations (LaserMix's
mmdetection3d code, SSLSS, Tarvainen & Valpola): EMA semantics, the deployed network, FOVMix
partners, batch composition, LaserMix's mixed-scan loss, and Mean Teacher reducing to Sup-only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kdseg.budgets import make_split
from kdseg.datasets.splits import split_frames
from kdseg.datasets.synthetic_street import StreetConfig, generate
from kdseg.ema import EmaTeacher, attach_teacher
from kdseg.inputs import RunContext, bind_inputs
from kdseg.lidar_data import FrameStore, LidarBatches
from kdseg.methods.base import build_method, method_class
from kdseg.methods.ignet import fov_mix
from kdseg.run import train_run
from kdseg.scales import get_scale

from .method_harness import example_batch, with_guidance
from .method_harness import synthetic_cloud as _cloud


def _batch(method):
    return example_batch(method, {})


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("street") / "street", StreetConfig.for_scale("smoke"))


def _teacher_copy(method, buffers: str) -> None:
    """Attach an EMA teacher whose weights equal the student's (momentum 0, one update)."""
    ema = EmaTeacher(method.student, momentum=0.0, buffers=buffers)
    ema.update(method.student)
    attach_teacher(method, ema.teacher)


@pytest.mark.parametrize("backbone", ["minkunet_tiny", "range_unet_tiny"])
def test_identical_weights_give_zero_consistency_with_reference_teacher(backbone):
    """Reference semantics: targets in train mode (batch statistics), so a teacher equal to the
    student gives exactly zero consistency; the old eval-mode teacher does not."""
    torch.manual_seed(0)
    opts = {"backbone": backbone, "labelled_per_batch": 1, "consistency_rampup": 0.0}
    method = build_method("mean_teacher", 19, opts)
    _teacher_copy(method, "own")
    method.train()
    assert float(method.training_step(_batch(method), step=0)["consistency"].detach()) == 0.0
    old = build_method("mean_teacher", 19, {**opts, "ema_buffers": "ema"})
    _teacher_copy(old, "ema")
    old.train()
    assert float(old.training_step(_batch(old), step=0)["consistency"].detach()) > 0.0


def test_mean_teacher_deploys_the_teacher_and_records_both(smoke_data, tmp_path):
    split = make_split("street", split_frames(smoke_data, "train"), "full", 0)
    m = train_run(smoke_data, split, "mean_teacher", tmp_path / "mt", scale="smoke")
    assert m["deployed"] == "teacher" and set(m["networks"]) == {"student", "teacher"}
    assert m["miou"] == m["networks"]["teacher"]["miou"]
    assert m["config"]["options"]["ema_buffers"] == "own"
    s = train_run(
        smoke_data,
        split,
        "mean_teacher",
        tmp_path / "mt_student",
        scale="smoke",
        options={"predict_on": "student"},
    )
    assert s["deployed"] == "student" and s["miou"] == s["networks"]["student"]["miou"]


def test_mean_teacher_without_consistency_or_unlabelled_clouds_is_sup_only(smoke_data, tmp_path):
    """Implementation check separating code from schedule: with consistency weight 0 and no
    unlabelled clouds, Mean Teacher's student trains exactly as Sup-only (same seed)."""
    split = make_split("street", split_frames(smoke_data, "train"), "scans-50", 0)
    sup = train_run(smoke_data, split, "sup_only", tmp_path / "sup", scale="smoke", seed=4)
    mt = train_run(
        smoke_data,
        split,
        "mean_teacher",
        tmp_path / "mt",
        scale="smoke",
        seed=4,
        options={"consistency_weight": 0.0, "unlabelled_per_batch": 0, "predict_on": "student"},
    )
    assert mt["miou"] == sup["miou"]
    assert mt["per_class_iou"] == sup["per_class_iou"]
    assert mt["confusion_matrix"] == sup["confusion_matrix"]
    a = torch.load(tmp_path / "sup" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "mt" / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("budget", ["full", "scans-50", "scans-1"])
def test_fovmix_partners_are_always_other_scans(smoke_data, budget):
    split = make_split("street", split_frames(smoke_data, "train"), budget, 0)
    bound = bind_inputs(["mix_partners"], {}, RunContext("ignet", smoke_data, split))
    batches = LidarBatches(FrameStore(smoke_data), split, 2, 2, seed=0, inputs=[*bound.values()])
    for step in range(40):
        batch = batches(step)
        for cloud in batch.labelled + batch.unlabelled:
            partner = cloud.extras["partner"]
            assert partner.frame != cloud.frame
        for cloud in batch.unlabelled:
            assert bool((cloud.extras["partner"].labels == 255).all())  # hidden for unlabelled


def test_fovmix_refuses_a_scan_as_its_own_partner():
    a = with_guidance(_cloud(1), 4, 1)
    with pytest.raises(ValueError, match="two different scans"):
        fov_mix(a, a, 0.3)


def test_batch_composition_of_the_scales():
    """Paper scale: 2 labelled + 2 unlabelled scans per batch (LaserMix config); default: 1:1."""
    paper, default = get_scale("paper"), get_scale("default")
    for name in ("mean_teacher", "lasermix", "ignet"):
        cls = method_class(name)
        assert build_method(name, 19, paper.defaults_for(cls.Options)).opts.clouds_per_batch == (
            2,
            2,
        )
        opts = build_method(name, 19, default.defaults_for(cls.Options)).opts
        assert opts.clouds_per_batch == (8, 8)
    sup = method_class("sup_only")
    assert build_method("sup_only", 19, paper.defaults_for(sup.Options)).opts.clouds_per_batch == (
        2,
        0,
    )


def test_scale_defaults_go_to_the_methods_that_have_them():
    """A scale may set one family's option (IGNet's InfoNCE sample cap) without giving it to the
    others; every key of every scale belongs to at least one registered method."""
    from dataclasses import fields

    from kdseg.methods.base import list_methods
    from kdseg.scales import SCALES

    assert "contrastive_samples" not in get_scale("default").defaults_for(
        method_class("sup_only").Options
    )
    ignet = get_scale("default").defaults_for(method_class("ignet").Options)
    assert ignet["contrastive_samples"] == 256
    known = {f.name for m in list_methods() for f in fields(method_class(m).Options)}
    for scale in SCALES.values():
        assert set(scale.method_defaults) <= known, scale.name


def test_lasermix_mixed_scans_get_the_supervised_loss():
    torch.manual_seed(0)
    method = build_method(
        "lasermix",
        19,
        {"labelled_per_batch": 1, "lovasz_weight": 1.0, "backbone": "range_unet_tiny"},
    )
    _teacher_copy(method, "own")
    method.train()
    terms = method.training_step(_batch(method), step=0)
    assert {"sup_ce", "sup_lovasz", "mix_ce", "mix_lovasz", "consistency"} <= set(terms)
    plain = build_method("lasermix", 19, {"labelled_per_batch": 1})
    _teacher_copy(plain, "own")
    assert "mix_lovasz" not in plain.training_step(_batch(plain), step=0)
    assert np.isfinite([float(v.detach()) for v in terms.values()]).all()


def test_ema_horizon_scales_with_the_schedule():
    """The teacher's horizon 1/(1 - m) stays 0.4 % of the run: LaserMix's 0.99 at its 25k
    iterations, 0.6875 at the default scale's 800; an explicit momentum wins."""
    mt = build_method("mean_teacher", 19)
    mt.total_iterations = 25_000
    assert abs(mt.ema_momentum() - 0.99) < 1e-12
    mt.total_iterations = 800
    assert abs(mt.ema_momentum() - 0.6875) < 1e-12
    assert mt.teacher_spec().options["momentum"] == mt.ema_momentum()
    fixed = build_method("lasermix", 19, {"ema_momentum": 0.95})
    fixed.total_iterations = 800
    assert fixed.ema_momentum() == 0.95
