"""Continual per-step scores by hand on a tiny confusion matrix (issue 14, item 6)."""

from __future__ import annotations

import numpy as np
import pytest

from kdseg.datasets.continual import Task
from kdseg.datasets.continual_metrics import final_columns, mean_over_steps, step_scores
from kdseg.evaluator import ConfusionMatrix

# A toy VOC-like task: background + 4 classes, steps {0, 1, 2}, {3}, {4} (label id = channel)
TOY_STEPS = ((0, 1, 2), (3,), (4,))


def _toy_task() -> Task:
    steps = (*TOY_STEPS[:2], (4, *range(5, 21)))  # Task needs every VOC id: pad the last step
    return Task("voc", "toy", steps)


def test_scores_after_each_step_by_hand():
    """Rows = ground truth, columns = prediction, 5 channels after step 2 of the toy task:

    gt 0: 8 right, 2 predicted as 3         IoU_0 = 8 / (10 + 9 - 8)  = 8/11
    gt 1: 4 right, 1 as 0                    IoU_1 = 4 / (5 + 4 - 4)   = 4/5
    gt 2: not in the ground truth, predicted once (a gt-4 pixel)  IoU_2 = 0 / 1 = 0
    gt 3: 3 right                            IoU_3 = 3 / (3 + 5 - 3)   = 3/5
    gt 4: 2 right, 1 as 2                    IoU_4 = 2 / (3 + 2 - 2)   = 2/3
    """
    m = np.zeros((5, 5), dtype=np.int64)
    m[0, 0], m[0, 3] = 8, 2
    m[1, 1], m[1, 0] = 4, 1
    m[3, 3] = 3
    m[4, 4], m[4, 2] = 2, 1
    cm = ConfusionMatrix(5)
    gt = np.repeat(np.arange(5), m.sum(axis=1))
    pred = np.concatenate([np.repeat(np.arange(5), m[r]) for r in range(5)])
    cm.update(pred, gt)
    assert (cm.matrix == m).all()
    iou = cm.compute(absent="exclude").per_class_iou
    expected = [8 / 11, 4 / 5, 0.0, 3 / 5, 2 / 3]
    assert np.allclose(iou, expected)
    # a class absent from ground truth and prediction is excluded (nan), not 0
    iou_ex = ConfusionMatrix(6).update(pred, gt).compute(absent="exclude").per_class_iou
    assert np.isnan(iou_ex[5])

    task = _toy_task()
    by_id = {c: float(v) for c, v in enumerate(iou)}
    s2 = step_scores(task, 2, {**by_id, **{c: None for c in range(5, 21)}})
    seen = [8 / 11, 4 / 5, 0.0, 3 / 5, 2 / 3]  # the toy's last step also holds 5..20: no IoU
    assert s2["miou_all"] == pytest.approx(sum(seen) / 5)
    assert s2["iou_background"] == pytest.approx(8 / 11)
    assert s2["miou_old"] == pytest.approx((4 / 5 + 0.0 + 3 / 5) / 3)  # classes 1, 2, 3
    assert s2["miou_new"] == pytest.approx(2 / 3)  # class 4 (5..20 have no IoU)
    assert s2["miou_base"] == pytest.approx((8 / 11 + 4 / 5 + 0.0) / 3)  # step 0 with bg
    assert s2["miou_incremental"] == pytest.approx((3 / 5 + 2 / 3) / 2)  # classes 3, 4
    s1 = step_scores(task, 1, by_id)
    assert s1["miou_all"] == pytest.approx((8 / 11 + 4 / 5 + 0.0 + 3 / 5) / 4)
    assert s1["miou_old"] == pytest.approx((4 / 5 + 0.0) / 2)
    assert s1["miou_new"] == pytest.approx(3 / 5)
    s0 = step_scores(task, 0, by_id)
    assert s0["miou_old"] is None and s0["miou_incremental"] is None
    assert s0["miou_new"] == pytest.approx((4 / 5 + 0.0) / 2)  # step 0's classes, no bg


def test_final_columns_and_the_mean_over_steps():
    """PLOP's Table 1 columns: old = step-0 classes with background, new = every later class."""
    from kdseg.datasets.continual import get_task

    task = get_task("voc", "15-1")
    iou = {c: c / 40 for c in range(21)}  # 0, 0.025, ..., 0.5
    cols = final_columns(task, iou)
    assert cols["old"] == pytest.approx(np.mean([c / 40 for c in range(16)]))
    assert cols["new"] == pytest.approx(np.mean([c / 40 for c in range(16, 21)]))
    assert cols["all"] == pytest.approx(np.mean([c / 40 for c in range(21)]))
    # a joint run scored on 15-5's columns gives the same numbers (same class sets)
    assert final_columns(get_task("voc", "15-5"), iou) == cols
    assert mean_over_steps([0.5, 0.25, 0.0]) == pytest.approx(0.25)
    assert mean_over_steps([0.5, None]) is None
    with pytest.raises(Exception, match="no IoU for seen class"):
        step_scores(task, 1, {c: 0.1 for c in range(16)})
