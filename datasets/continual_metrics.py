"""Scores of a continual step from per-class IoU (what MiB, PLOP and LGKD report per step).

Given the IoU of every class seen so far after step ``t`` of a task (from the one confusion
matrix evaluator, :class:`kdseg.evaluator.ConfusionMatrix`), :func:`step_scores` gives:

* ``miou_all``: mean over every seen class, background included (PLOP's "all");
* ``iou_background``: IoU of class 0;
* ``miou_old``: mean over the *old foreground* classes (learnt before step ``t``, background
  excluded; LGKD's "old"); ``None`` at step 0;
* ``miou_new``: mean over the classes learnt at step ``t`` (background excluded);
* ``miou_base``: mean over the classes of step 0, background included (PLOP's Table 1 column
  "0-15" / "0-19", the published tables' "old");
* ``miou_incremental``: mean over every class learnt after step 0 (PLOP's "16-20" / "20", the
  published tables' "new"); ``None`` at step 0.

After the last step of a two-step task (15-5, 19-1) ``miou_base`` is ``miou_old`` with the
background and ``miou_incremental`` is ``miou_new``; on 15-1 they differ (``new`` is class 20
alone, ``incremental`` classes 16-20). A class excluded from the evaluation (absent from the
ground truth and the predictions, IoU ``None``) is left out of every mean (MiB's
``np.nanmean``); a mean over no class is ``None``. :func:`mean_over_steps` is PLOP's "avg".
Scores are fractions in [0, 1]. This module needs numpy only (the report imports it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from kdseg.errors import DataFormatError

from .continual import Task

SCORE_KEYS: tuple[str, ...] = (
    "miou_all",
    "iou_background",
    "miou_old",
    "miou_new",
    "miou_base",
    "miou_incremental",
)


def _finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def mean_iou(iou: Mapping[int, float | None], classes: Iterable[int]) -> float | None:
    """Mean IoU over ``classes`` (label ids), leaving out classes whose IoU is ``None``/NaN;
    ``None`` when no class is left. ``KeyError`` for a class ``iou`` does not hold."""
    values = [iou[c] for c in classes]
    kept = [float(v) for v in values if _finite(v)]
    return sum(kept) / len(kept) if kept else None


def step_scores(task: Task, step: int, iou: Mapping[int, float | None]) -> dict[str, float | None]:
    """The scores of the module docstring after ``step`` of ``task``.

    Args:
        task: the task (its steps give old, new, base and incremental classes).
        step: the step just trained.
        iou: IoU by label id for (at least) every class seen up to ``step``.
    """
    seen = task.seen_classes(step)
    missing = [c for c in seen if c not in iou]
    if missing:
        raise DataFormatError("<per-class IoU>", f"no IoU for seen class(es) {missing}")
    old_fg = [c for c in task.old_classes(step) if c != 0]
    incremental = [c for s in task.steps[1 : step + 1] for c in s]
    return {
        "miou_all": mean_iou(iou, seen),
        "iou_background": iou[0] if _finite(iou[0]) else None,
        "miou_old": mean_iou(iou, old_fg) if step > 0 else None,
        "miou_new": mean_iou(iou, task.new_classes(step)),
        "miou_base": mean_iou(iou, task.steps[0]),
        "miou_incremental": mean_iou(iou, incremental) if step > 0 else None,
    }


def final_columns(task: Task, iou: Mapping[int, float | None]) -> dict[str, float | None]:
    """The published tables' columns after the last step of ``task`` from IoU by label id:
    ``old`` (step-0 classes with background), ``new`` (every later class) and ``all``. Also
    what a joint-training run (every class in one step) scores on ``task``'s columns."""
    last = task.num_steps - 1
    incremental = [c for s in task.steps[1:] for c in s]
    return {
        "old": mean_iou(iou, task.steps[0]),
        "new": mean_iou(iou, incremental) if incremental else None,
        "all": mean_iou(iou, task.seen_classes(last)),
    }


def mean_over_steps(values: Sequence[float | None]) -> float | None:
    """Mean of the per-step ``miou_all`` (PLOP's "avg"); ``None`` if a step has none."""
    if not values or not all(_finite(v) for v in values):
        return None
    return sum(float(v) for v in values if v is not None) / len(values)
