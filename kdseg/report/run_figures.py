"""Figures of one run, drawn from its run record (not by the training process).

:func:`run_figures` is what the tracking job attaches to a run's MLflow entry
(``kdseg track``): today the row-normalised confusion matrix of the deployed network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kdseg.io import atomic_open
from kdseg.record import RunRecord

CONFUSION_FIGURE = "confusion_matrix.png"


def confusion_figure(
    matrix: Sequence[Sequence[float]] | np.ndarray, class_names: Sequence[str], path: str | Path
) -> Path:
    """Write a row-normalised confusion matrix (rows = ground truth) as a PNG, atomically.

    Each cell shows the fraction of a ground-truth class's points predicted as each class (rows
    without points stay 0); the class names label both axes. Returns ``path``.
    """
    from matplotlib.figure import Figure

    cm = np.asarray(matrix, dtype=np.float64)
    n = cm.shape[0]
    if cm.ndim != 2 or cm.shape != (n, n) or len(class_names) != n:
        raise ValueError(
            f"need an n x n matrix and n class names, got {cm.shape}, {len(class_names)}"
        )
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = min(max(4.0, 0.45 * n + 2.0), 16.0)  # ADE20K's 151 classes: 16 inches, not 70
    font = 7.0 * min(1.0, 40 / n)
    fig = Figure(figsize=(size, size * 0.9), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(norm, vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n), list(class_names), rotation=90, fontsize=font)
    ax.set_yticks(range(n), list(class_names), fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("ground-truth class")
    ax.set_title("confusion matrix (row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of ground-truth points")
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png")
    return path


def default_class_names(metrics: Mapping[str, Any], n: int) -> list[str]:
    """Class names for an ``n``-class record: its ``class_names`` list if present, the
    SemanticKITTI train classes when ``n`` is 19, else ``"0".."n-1"``."""
    names = metrics.get("class_names")
    if isinstance(names, list) and len(names) == n:
        return [str(x) for x in names]
    from kdseg.datasets.semantickitti_labels import CLASS_NAMES

    return list(CLASS_NAMES) if n == len(CLASS_NAMES) else [str(i) for i in range(n)]


def run_figures(record: RunRecord, folder: str | Path) -> list[Path]:
    """The figures of one run written into ``folder``: ``confusion_matrix.png`` when the record
    has a confusion matrix."""
    cm = record.confusion_matrix
    if not cm:
        return []
    from kdseg.datasets.lidar_layouts import class_order

    per_class = class_order(list(record.per_class_iou))  # the record's classes, train-id order
    names = per_class if len(per_class) == len(cm) else default_class_names(record.extra, len(cm))
    return [confusion_figure(cm, names, Path(folder) / CONFUSION_FIGURE)]
