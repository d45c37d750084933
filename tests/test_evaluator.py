"""Golden tests of the evaluator on hand-made matrices and on a real SemanticKITTI label file."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kdseg import IGNORE_INDEX
from kdseg.datasets.semantickitti import read_label, train_labels
from kdseg.datasets.semantickitti_labels import CLASS_NAMES, NUM_CLASSES
from kdseg.evaluator import ConfusionMatrix, segmentation_metrics

from .conftest import realdata_path

# rows = ground truth, columns = prediction
MATRIX = np.array([[3, 1, 0], [0, 2, 2], [1, 0, 1]])


def pairs_from_matrix(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pred, target) arrays whose confusion matrix is ``matrix``."""
    gt, pr = np.nonzero(matrix)
    counts = matrix[gt, pr]
    return np.repeat(pr, counts), np.repeat(gt, counts)


def test_matrix_from_pairs_numpy_and_torch_any_shape() -> None:
    pred, target = pairs_from_matrix(MATRIX)
    cm = ConfusionMatrix(3).update(pred, target)
    assert cm.matrix.dtype == np.int64
    np.testing.assert_array_equal(cm.matrix, MATRIX)
    cm2 = ConfusionMatrix(3).update(torch.from_numpy(pred).view(2, 5), torch.from_numpy(target))
    np.testing.assert_array_equal(cm2.matrix, MATRIX)


def test_golden_metrics_by_hand() -> None:
    m = segmentation_metrics(MATRIX)
    # class 0: TP 3, FN 1, FP 1 -> 3/5; class 1: TP 2, FN 2, FP 1 -> 2/5; class 2: TP 1, FN 1,
    # FP 2 -> 1/4
    np.testing.assert_allclose(m.per_class_iou, [0.6, 0.4, 0.25], rtol=1e-12)
    assert m.miou == pytest.approx((0.6 + 0.4 + 0.25) / 3, rel=1e-12)
    assert m.accuracy == pytest.approx(6 / 10, rel=1e-12)
    np.testing.assert_allclose(m.per_class_accuracy, [3 / 4, 2 / 4, 1 / 2], rtol=1e-12)
    assert m.mean_class_accuracy == pytest.approx((0.75 + 0.5 + 0.5) / 3, rel=1e-12)
    assert m.num_points == 10
    d = m.to_dict(["a", "b", "c"])
    assert d["iou/b"] == pytest.approx(0.4) and d["acc/c"] == pytest.approx(0.5)
    assert d["miou"] == m.miou
    with pytest.raises(ValueError, match="2 class names given for 3 classes"):
        m.to_dict(["a", "b"])


def test_absent_class_policy() -> None:
    four = np.zeros((4, 4), np.int64)
    four[:3, :3] = MATRIX  # class 3: absent from prediction and ground truth
    zero = segmentation_metrics(four, absent="zero")
    assert zero.per_class_iou[3] == 0.0
    assert zero.miou == pytest.approx((0.6 + 0.4 + 0.25 + 0.0) / 4, rel=1e-12)
    assert zero.mean_class_accuracy == pytest.approx((0.75 + 0.5 + 0.5 + 0.0) / 4, rel=1e-12)
    excl = segmentation_metrics(four, absent="exclude")
    assert math.isnan(excl.per_class_iou[3]) and math.isnan(excl.per_class_accuracy[3])
    assert excl.miou == pytest.approx((0.6 + 0.4 + 0.25) / 3, rel=1e-12)
    assert excl.accuracy == zero.accuracy == pytest.approx(0.6)
    with pytest.raises(ValueError, match="absent"):
        segmentation_metrics(four, absent="skip")  # type: ignore[arg-type]


def test_class_predicted_but_absent_from_ground_truth_scores_zero_in_both_modes() -> None:
    m = np.array([[2, 1], [0, 0]])  # class 1 never in the ground truth, predicted once
    for absent in ("zero", "exclude"):
        r = segmentation_metrics(m, absent=absent)
        assert r.per_class_iou[1] == 0.0
        assert r.per_class_iou[0] == pytest.approx(2 / 3)
    assert math.isnan(segmentation_metrics(m, absent="exclude").per_class_accuracy[1])


def test_ignore_targets_dropped_and_abstaining_predictions_are_misses() -> None:
    target = np.array([0, 0, 1, IGNORE_INDEX, IGNORE_INDEX, 1])
    pred = np.array([0, 1, 1, 0, IGNORE_INDEX, IGNORE_INDEX])
    cm = ConfusionMatrix(2).update(pred, target)
    np.testing.assert_array_equal(cm.matrix, [[1, 1], [0, 1]])
    np.testing.assert_array_equal(cm.unassigned, [0, 1])  # last point: target 1, pred ignore
    r = cm.compute()
    # class 0: TP 1, FN 1, FP 0 -> 1/2; class 1: TP 1, FN 1 (abstained), FP 1 -> 1/3
    np.testing.assert_allclose(r.per_class_iou, [1 / 2, 1 / 3], rtol=1e-12)
    assert r.accuracy == pytest.approx(2 / 4) and r.num_points == 4


def test_bad_ids_shapes_and_dtypes_raise() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"prediction contains ids \[3, 7\]"):
        cm.update(np.array([0, 7, 3, 3]), np.array([0, 1, 2, 2]))
    with pytest.raises(ValueError, match=r"target contains ids \[-1\]"):
        cm.update(np.array([0, 1]), np.array([-1, 1]))
    with pytest.raises(ValueError, match="4 elements but target has 3"):
        cm.update(np.zeros(4, int), np.zeros(3, int))
    with pytest.raises(ValueError, match="integer"):
        cm.update(np.zeros(3), np.zeros(3, int))
    with pytest.raises(ValueError, match="ignore_index 1 is a valid class id"):
        ConfusionMatrix(3, ignore_index=1)
    assert cm.matrix.sum() == 0  # failed updates add nothing


def test_merge_add_reset() -> None:
    pred, target = pairs_from_matrix(MATRIX)
    a = ConfusionMatrix(3).update(pred[:4], target[:4])
    b = ConfusionMatrix(3).update(pred[4:], target[4:])
    np.testing.assert_array_equal((a + b).matrix, MATRIX)
    a.merge(b)
    np.testing.assert_array_equal(a.matrix, MATRIX)
    with pytest.raises(ValueError, match="cannot merge a 4-class"):
        a.merge(ConfusionMatrix(4))
    a.reset()
    assert a.matrix.sum() == 0 and a.unassigned.sum() == 0


@pytest.fixture(scope="module")
def real_labels() -> np.ndarray:
    path = realdata_path("semantickitti", "dataset", "sequences", "00", "labels", "000000.label")
    raw, _ = read_label(path)
    return train_labels(path, raw)


def test_real_labels_against_themselves(real_labels: np.ndarray) -> None:
    present = np.unique(real_labels[real_labels != IGNORE_INDEX])
    cm = ConfusionMatrix(NUM_CLASSES).update(real_labels, real_labels)
    r = cm.compute()
    expected = np.zeros(NUM_CLASSES)
    expected[present] = 1.0
    np.testing.assert_allclose(r.per_class_iou, expected, rtol=1e-12)
    assert r.miou == pytest.approx(present.size / 19, rel=1e-12)
    assert r.accuracy == pytest.approx(1.0)
    assert cm.compute(absent="exclude").miou == pytest.approx(1.0)
    assert r.num_points == int((real_labels != IGNORE_INDEX).sum())
    assert set(r.to_dict(CLASS_NAMES)) >= {"iou/road", "miou"}


def test_real_labels_against_known_perturbation(real_labels: np.ndarray) -> None:
    road, parking, building, vegetation = (
        CLASS_NAMES.index(n) for n in ("road", "parking", "building", "vegetation")
    )
    pred = real_labels.copy()
    pred[real_labels == road] = parking
    building_idx = np.flatnonzero(real_labels == building)
    pred[building_idx[::10]] = vegetation
    pred[real_labels == IGNORE_INDEX] = 0  # anything may be predicted on ignored points

    valid = real_labels != IGNORE_INDEX
    counts = np.bincount(real_labels[valid], minlength=NUM_CLASSES)
    n_road, n_park, n_build, n_veg = counts[[road, parking, building, vegetation]]
    moved = math.ceil(n_build / 10)  # building points predicted as vegetation
    assert n_road > 0 and n_build > 0 and n_veg > 0  # the frame exercises every case

    expected = (counts > 0).astype(float)
    expected[road] = 0.0  # TP 0, FN n_road
    expected[parking] = n_park / (n_park + n_road)  # TP n_park, FP n_road
    expected[building] = (n_build - moved) / n_build  # FN moved
    expected[vegetation] = n_veg / (n_veg + moved)  # FP moved
    r = ConfusionMatrix(NUM_CLASSES).update(pred, real_labels).compute()
    np.testing.assert_allclose(r.per_class_iou, expected, rtol=1e-12)
    assert r.miou == pytest.approx(expected.sum() / 19, rel=1e-12)
    assert r.accuracy == pytest.approx((valid.sum() - n_road - moved) / valid.sum(), rel=1e-12)
