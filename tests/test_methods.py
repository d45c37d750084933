"""Every registered method: one training step and its inference network (registry-parametrized).

A new method file in methods/ is covered here without a new test, whatever its task family
(LiDAR clouds or continual 2D images: tests/method_harness.py builds the family's batch).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdseg.errors import ConfigError
from kdseg.methods.base import build_method, list_methods, options_help

from . import kd_method  # noqa: F401  (the documented outside method: a frozen teacher)
from .method_harness import (
    NUM_CLASSES,
    check_inference,
    example_batch,
    example_method,
    synthetic_cloud,
)


def test_registry_has_the_baselines():
    assert {"sup_only", "mean_teacher", "lasermix", "ignet"} <= set(list_methods())
    assert "logit_kd" in list_methods()  # tests/kd_method.py, a frozen-teacher method


@pytest.mark.parametrize("name", list_methods())
def test_training_step_and_inference(name, tmp_path):
    """Built as a run builds it: the inputs it requires (each provider's example), the options
    they fix, the teacher it declares (built by the Trainer's function)."""
    torch.manual_seed(0)
    method, inputs = example_method(name, tmp=tmp_path)
    spec = method.teacher_spec()
    assert (method.teacher is not None) == (spec is not None)
    if spec is not None and spec.kind == "frozen":
        assert spec.options.get("input", "teacher_checkpoint") in method.requires
    method.train()
    terms = method.training_step(example_batch(method, inputs), step=0)
    assert terms and all(t.ndim == 0 for t in terms.values())
    total = sum(terms.values())
    assert torch.isfinite(total), terms
    total.backward()
    backbone_grads = [
        p.grad
        for n, p in method.student.named_parameters()
        if "backbone" in n and p.grad is not None
    ]
    assert backbone_grads, "no gradient reached the backbone"
    assert any(float(g.abs().sum()) > 0 for g in backbone_grads)
    check_inference(method)
    assert all(h for h in options_help(name).values()), "every option documents itself"


def test_unknown_method_and_bad_options():
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        build_method("nope", NUM_CLASSES)
    with pytest.raises(ConfigError, match=r"sup_only\.lr_typo"):
        build_method("sup_only", NUM_CLASSES, {"lr_typo": 1})
    with pytest.raises(ConfigError, match=r"mean_teacher\.consistency_weight"):
        build_method("mean_teacher", NUM_CLASSES, {"consistency_weight": "high"})


def test_lasermix_mixes_by_inclination():
    from kdseg.methods.lasermix import inclination_areas, laser_mix

    a, b = synthetic_cloud(1), synthetic_cloud(2, labelled=False)
    areas = inclination_areas(a.points, 4, -25.0, 3.0)
    assert set(areas.unique().tolist()) <= {0, 1, 2, 3}
    m1, m2 = laser_mix(a, b, 4, -25.0, 3.0)
    # the two mixes together hold every point of both scans exactly once
    assert m1.points.shape[0] + m2.points.shape[0] == a.points.shape[0] + b.points.shape[0]
    # labels of the unlabelled scan stay hidden in the mixes
    pa = inclination_areas(a.points, 4, -25.0, 3.0) % 2 == 0
    assert torch.equal(m1.labels[: int(pa.sum())], a.labels[pa])


@pytest.mark.parametrize("name", ["mean_teacher", "lasermix"])
def test_consistency_weight_follows_the_ramp_up(name):
    """The consistency term is weighted by w·exp(-5(1-t)²), t = step / (ramp · iterations)."""
    method, inputs = example_method(name, {"mix_weight": 0.0} if name == "lasermix" else {})
    method.total_iterations = 100  # ramp-up over the first 30 iterations (default 0.3)
    with torch.no_grad():  # a teacher that differs from the student
        for p in method.teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    method.eval()  # same outputs at every call (no BN statistics update)
    batch = example_batch(method, inputs)
    torch.manual_seed(0)
    start = method.training_step(batch, step=0)["consistency"].detach()
    torch.manual_seed(0)
    middle = method.training_step(batch, step=15)["consistency"].detach()
    torch.manual_seed(0)
    end = method.training_step(batch, step=30)["consistency"].detach()
    assert float(end) > 0
    assert float(start / end) == pytest.approx(np.exp(-5.0), rel=1e-4)
    assert float(middle / end) == pytest.approx(np.exp(-5.0 * 0.25), rel=1e-4)
    assert method.consistency_weight(99) == method.opts.consistency_weight
