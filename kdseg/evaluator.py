"""The one evaluator of the suite: a confusion matrix and the metrics derived from it.

Convention (semantic-kitti-api ``evaluate_semantics.py``): ``IoU_c = TP_c / (TP_c + FP_c + FN_c +
1e-15)`` and ``mIoU`` is the mean over *all* classes, so a class that appears neither in the ground
truth nor in the prediction counts as 0. ``absent="exclude"`` instead reports such a class as
``nan`` and leaves it out of the mean. Every method of the suite is scored by this module, which is
what makes the result tables comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from kdseg import IGNORE_INDEX

EPS: float = 1e-15
"""Denominator epsilon of semantic-kitti-api (keeps 0/0 at 0)."""

AbsentPolicy = Literal["zero", "exclude"]


def _as_numpy(x: Any) -> np.ndarray:
    """A flat integer NumPy view of a NumPy array or torch tensor (any shape)."""
    if hasattr(x, "detach"):  # torch.Tensor without importing torch here
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "iub":
        raise ValueError(f"labels must be integer arrays, got dtype {arr.dtype}")
    return arr.reshape(-1).astype(np.int64, copy=False)


class ConfusionMatrix:
    """Accumulates a ``(C, C)`` int64 matrix, rows = ground truth, columns = prediction.

    Points whose target is ``ignore_index`` are dropped. A *prediction* equal to
    ``ignore_index`` on a labelled point (a network that abstains) is not a column of the matrix:
    it is counted in :attr:`unassigned` ``(C,)`` and scored as a false negative of its class.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if 0 <= ignore_index < num_classes:
            raise ValueError(f"ignore_index {ignore_index} is a valid class id (< {num_classes})")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.unassigned = np.zeros(num_classes, dtype=np.int64)

    def _check_ids(self, ids: np.ndarray, what: str) -> None:
        bad = (ids < 0) | (ids >= self.num_classes)
        bad &= ids != self.ignore_index
        if bad.any():
            values = np.unique(ids[bad])
            raise ValueError(
                f"{what} contains ids {values[:20].tolist()} outside [0, {self.num_classes}) "
                f"that are not the ignore index {self.ignore_index}"
            )

    def update(self, pred: Any, target: Any) -> ConfusionMatrix:
        """Add predictions and ground truth of equal size (NumPy or torch, any shape)."""
        p, t = _as_numpy(pred), _as_numpy(target)
        if p.shape != t.shape:
            raise ValueError(f"prediction has {p.size} elements but target has {t.size}")
        self._check_ids(p, "prediction")
        self._check_ids(t, "target")
        keep = t != self.ignore_index
        p, t = p[keep], t[keep]
        abstain = p == self.ignore_index
        c = self.num_classes
        self.unassigned += np.bincount(t[abstain], minlength=c)
        idx = t[~abstain] * c + p[~abstain]
        self.matrix += np.bincount(idx, minlength=c * c).reshape(c, c)
        return self

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add the counts of ``other`` (same class count and ignore index) in place."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError(
                f"cannot merge a {other.num_classes}-class matrix (ignore {other.ignore_index}) "
                f"into a {self.num_classes}-class one (ignore {self.ignore_index})"
            )
        self.matrix += other.matrix
        self.unassigned += other.unassigned
        return self

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        out = ConfusionMatrix(self.num_classes, self.ignore_index)
        return out.merge(self).merge(other)

    def reset(self) -> None:
        """Zero all counts."""
        self.matrix[:] = 0
        self.unassigned[:] = 0

    def compute(self, absent: AbsentPolicy = "zero") -> SegMetrics:
        """Metrics of the accumulated counts (see :func:`segmentation_metrics`)."""
        return segmentation_metrics(self.matrix, absent=absent, unassigned=self.unassigned)


@dataclass(frozen=True)
class SegMetrics:
    """Scores of one confusion matrix. Arrays are ``(C,)`` float64, ratios in [0, 1].

    Attributes:
        per_class_iou: IoU per class (``nan`` for excluded absent classes).
        miou: mean of ``per_class_iou`` (over all classes, or the non-``nan`` ones).
        accuracy: overall point accuracy, correct / labelled points.
        per_class_accuracy: recall ``TP / (TP + FN)`` per class (absent from the ground truth:
            0 under ``absent="zero"``, ``nan`` under ``"exclude"``).
        mean_class_accuracy: mean of ``per_class_accuracy`` under the same rule.
        num_points: labelled points counted.
        absent: the policy used for classes absent from prediction and ground truth.
    """

    per_class_iou: np.ndarray
    miou: float
    accuracy: float
    per_class_accuracy: np.ndarray
    mean_class_accuracy: float
    num_points: int
    absent: AbsentPolicy

    def to_dict(self, class_names: tuple[str, ...] | list[str] | None = None) -> dict[str, float]:
        """Flat ``{"miou", "accuracy", "mean_class_accuracy", "iou/<name>", "acc/<name>"}``."""
        c = self.per_class_iou.shape[0]
        names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
        if len(names) != c:
            raise ValueError(f"{len(names)} class names given for {c} classes")
        out = {
            "miou": self.miou,
            "accuracy": self.accuracy,
            "mean_class_accuracy": self.mean_class_accuracy,
        }
        out.update({f"iou/{n}": float(v) for n, v in zip(names, self.per_class_iou, strict=True)})
        pairs = zip(names, self.per_class_accuracy, strict=True)
        out.update({f"acc/{n}": float(v) for n, v in pairs})
        return out


def _mean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def segmentation_metrics(
    matrix: np.ndarray, absent: AbsentPolicy = "zero", unassigned: np.ndarray | None = None
) -> SegMetrics:
    """IoU, mIoU, accuracy and class accuracy of a ``(C, C)`` matrix (rows = ground truth).

    Args:
        matrix: counts, rows = ground truth, columns = prediction.
        absent: ``"zero"`` (semantic-kitti-api: a class absent from both counts as IoU 0) or
            ``"exclude"`` (such a class is ``nan`` and left out of the mean).
        unassigned: ``(C,)`` labelled points per class predicted as the ignore index; they are
            false negatives of their class and wrong for the accuracy.
    """
    if absent not in ("zero", "exclude"):
        raise ValueError(f"absent must be 'zero' or 'exclude', got {absent!r}")
    m = np.asarray(matrix, dtype=np.int64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"confusion matrix must be square (C, C), got {m.shape}")
    miss = np.zeros(m.shape[0], np.int64) if unassigned is None else np.asarray(unassigned)
    tp = np.diag(m).astype(np.float64)
    gt = m.sum(axis=1) + miss  # TP + FN
    fp = m.sum(axis=0) - np.diag(m)
    iou = tp / (gt + fp + EPS)
    acc_c = tp / (gt + EPS)
    if absent == "exclude":
        iou[(gt + fp) == 0] = np.nan
        acc_c[gt == 0] = np.nan
    total = int(gt.sum())
    return SegMetrics(
        per_class_iou=iou,
        miou=_mean(iou),
        accuracy=float(tp.sum() / (total + EPS)),
        per_class_accuracy=acc_c,
        mean_class_accuracy=_mean(acc_c),
        num_points=total,
        absent=absent,
    )
