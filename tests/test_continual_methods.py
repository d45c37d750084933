"""The continual 2D methods on the one Trainer: each method's loss wiring against the official
recipes and hand computations on small tensors, and the step chain (the old model is the
previous step's final model, frozen, the classifier grown with MiB's initialisation)."""

from __future__ import annotations

import math

import pytest
import torch

from kdseg.continual import (
    entropy_pseudo_labels,
    kd_loss,
    lgkd_loss,
    loss_terms,
    recipe,
    unbiased_cross_entropy,
    unbiased_kd_loss,
)
from kdseg.continual.losses import downsample_labels
from kdseg.errors import ConfigError
from kdseg.methods.base import list_methods, method_class

from .method_harness import IMAGE_FAMILY, example_image_batch, example_method

CONTINUAL = list_methods(IMAGE_FAMILY)


@pytest.fixture(autouse=True)
def _one_thread(single_thread):
    torch.manual_seed(0)


def _outputs(method, batch):
    method.eval()  # the same BN statistics for both forward passes
    new = method.student(batch.images)
    old = method.teacher(batch.images) if method.teacher is not None else None
    return new, old


def test_every_method_of_the_issue_is_registered():
    assert set(CONTINUAL) >= {"ft", "lwf", "ilt", "mib", "plop", "mib_lgkd", "plop_lgkd", "joint"}


@pytest.mark.parametrize("name", CONTINUAL)
def test_training_step_equals_the_official_recipe(name, tmp_path):
    """The terms a method returns are ``loss_terms`` of its preset's recipe on the same
    outputs (VOC 15-5 step 1: the step's labels, PLOP's pseudo-labels from the thresholds the
    method computed before training)."""
    method, _ = example_method(name, tmp=tmp_path)
    batch = example_image_batch(3)
    method.eval()
    terms = method.training_step(batch, 0)
    new, old = _outputs(method, batch)
    cls = method_class(name)
    rec = recipe(cls.preset, "voc", "offline" if cls.single_step else "15-5")
    pseudo = None
    if old is not None and rec.needs_pseudo_labels:
        pseudo = entropy_pseudo_labels(
            batch.labels, old.logits, method.pseudo_thresholds, method.max_entropy
        )
    expected = loss_terms(rec, new, old, batch.labels, pseudo)
    assert set(terms) == set(expected)
    for key in expected:
        assert torch.allclose(terms[key], expected[key], rtol=1e-5, atol=1e-7), key


def test_weights_by_hand(tmp_path):
    """MiB: unbiased CE + 10 x unbiased KD; LwF: CE + 100 x KD (option kd_weight scales it);
    MiB+LGKD on 15-5: 1 x LGKD with prev 5, novel 1 on the small logits."""
    batch = example_image_batch(4)
    mib, _ = example_method("mib", tmp=tmp_path)
    mib.eval()
    new, old = _outputs(mib, batch)
    terms = mib.training_step(batch, 0)
    ce = unbiased_cross_entropy(new.logits, batch.labels, 16)
    assert torch.allclose(terms["ce"], ce)
    assert torch.allclose(terms["kd"], 10 * unbiased_kd_loss(new.logits, old.logits))
    for weight in (100.0, 2.5):
        lwf, _ = example_method("lwf", {"kd_weight": weight}, tmp=tmp_path)
        lwf.eval()
        new, old = _outputs(lwf, batch)
        kd = lwf.training_step(batch, 0)["kd"]
        assert torch.allclose(kd, weight * kd_loss(new.logits, old.logits))
    lg, _ = example_method("mib_lgkd", tmp=tmp_path)
    lg.eval()
    new, old = _outputs(lg, batch)
    small = downsample_labels(batch.labels, tuple(new.logits_small.shape[-2:]))
    want = lgkd_loss(new.logits_small, old.logits_small, small, 5.0, 1.0)
    assert torch.allclose(lg.training_step(batch, 0)["kd"], want)
    ilt, _ = example_method("ilt", {"feature_weight": 0.0}, tmp=tmp_path)
    assert "feature" not in ilt.training_step(batch, 0)  # a zero weight drops the term


def test_the_step_chain_old_model_frozen_head_grown(tmp_path):
    """At step 1 the student starts from the old model's weights with the classifier grown by
    the step's classes (MiB's balanced init: new rows = the background row, biases
    b_0 - log(N + 1)); the teacher is the old model, frozen and in eval mode."""
    mib, inputs = example_method("mib", tmp=tmp_path)
    old = inputs["old_model"].load_network()
    assert mib.student.classes_per_step == [16, 5]
    assert mib.teacher is not None and not mib.teacher.training
    assert not any(p.requires_grad for p in mib.teacher.parameters())
    old_state = old.state_dict()
    for key, value in mib.teacher.state_dict().items():
        assert torch.equal(value.cpu(), old_state[key]), key
    new_state = mib.student.state_dict()
    for key, value in old_state.items():
        if key == "classifier.cls.0.bias":
            continue  # MiB lowers the background bias
        assert torch.equal(new_state[key], value), key
    w0, b0 = old_state["classifier.cls.0.weight"][0], old_state["classifier.cls.0.bias"][0]
    grown_w, grown_b = new_state["classifier.cls.1.weight"], new_state["classifier.cls.1.bias"]
    assert all(torch.equal(row, w0) for row in grown_w)
    assert torch.allclose(grown_b, (b0 - math.log(6)).expand(5))
    assert torch.allclose(new_state["classifier.cls.0.bias"][0], b0 - math.log(6))
    ft, inputs = example_method("ft", tmp=tmp_path)  # random init of the new classes
    assert not torch.equal(ft.student.state_dict()["classifier.cls.1.weight"][0], w0)
    assert ft.teacher_spec().kind == "frozen" and ft.teacher_spec().options["input"] == "old_model"


def test_step_rules(tmp_path):
    """Step 0 has no teacher; a step >= 1 needs the old model; joint trains one step only."""
    from kdseg.continual.step import StepContext
    from kdseg.datasets.continual import get_task
    from kdseg.inputs.old_model import BoundOldModel
    from kdseg.methods.base import build_method

    task = get_task("voc", "15-5")
    ft = build_method("ft", 16, {"backbone": "cseg_tiny"})
    ft.prepare(StepContext(task, 0), {"old_model": BoundOldModel("old_model", None, None)})
    assert ft.teacher_spec() is None and ft.student.classes_per_step == [16]
    with pytest.raises(ConfigError, match=r"'ft\.old_model'.*needs the previous step's model"):
        ft.prepare(StepContext(task, 1), {"old_model": BoundOldModel("old_model", None, None)})
    joint = build_method("joint", 21, {"backbone": "cseg_tiny"})
    with pytest.raises(ConfigError, match="use the offline task"):
        joint.prepare(StepContext(task, 1), {})
    wide, inputs = example_method("mib", tmp=tmp_path)
    other = build_method("mib", 16, {"backbone": "deeplabv3_resnet50"})
    with pytest.raises(ConfigError, match=r"'mib\.backbone'"):
        other.prepare(StepContext(task, 1), inputs)
    with pytest.raises(ConfigError, match=r"'mib\.old_model'.*classes per step \[16\]"):
        wide.prepare(StepContext(get_task("voc", "19-1"), 1), inputs)
