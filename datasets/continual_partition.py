"""MiB's shipped ADE20K training split: a greedy *partition* of the images over the steps.

MiB ships ``data/ade/<task>/train-<t>.npy`` files made by its ``ADE-Split.ipynb``; they are not
the ``filter_images`` selection (``shared/specs/datasets.md`` §8.2, "ADE caveat"): every image
with at least one foreground class goes to exactly one step. We re-derived the rule from the
notebook and reproduce the shipped files exactly (``tests/test_continual_tasks.py``):

1. ``n_c`` = number of training images containing class ``c`` (background not counted).
2. Images are visited grouped by their smallest class id (ascending), by row within a group;
   images with no foreground class are never assigned.
3. For image ``i`` with classes ``c_1 < ... < c_m``, class ``c`` scores
   ``s_c = 120 * (1 - a_c / n_c) + (sum_j n_{c_j}) / n_c``, where ``a_c`` counts the images
   assigned so far to the step of ``c`` that contain ``c``. The first class with the highest
   score decides: the image goes to that class's step ``t``, and ``a_c`` grows by one for every
   class of the image that belongs to step ``t``.

The shipped ``100-50`` files are the ``100-10`` partition with steps 1..5 merged (same step 0,
same union), so :data:`PARTITION_GROUPING` runs ``100-50`` through ``100-10``'s steps.
"""

from __future__ import annotations

import numpy as np

from kdseg.errors import ConfigError

from .continual import Task, get_task
from .continual_lists import ClassLists

PARTITION_GROUPING: dict[tuple[str, str], str] = {("ade20k", "100-50"): "100-10"}
"""Tasks whose shipped partition was computed on a finer task's steps, then merged."""

SCORE_WEIGHT: float = 120.0
"""Weight of the "share of the class still unassigned" term of the greedy score."""


def _greedy(lists: ClassLists, steps: tuple[tuple[int, ...], ...]) -> list[np.ndarray]:
    presence = lists.presence.copy()
    presence[:, 0] = False
    members = presence.sum(axis=0).astype(np.float64)
    step_of = np.full(lists.num_classes, -1, dtype=np.int64)
    for t, classes in enumerate(steps):
        step_of[list(classes)] = t
    has_any = presence.any(axis=1)
    rows = np.flatnonzero(has_any)
    smallest = presence[rows].argmax(axis=1)
    visit = rows[np.lexsort((rows, smallest))]
    assigned = np.zeros(lists.num_classes, dtype=np.float64)
    out: list[list[int]] = [[] for _ in steps]
    for r in visit:
        classes = np.flatnonzero(presence[r])
        counts = members[classes]
        total = counts.sum()
        score = (1.0 - assigned[classes] / counts) * SCORE_WEIGHT + 1.0 / (counts / total)
        t = int(step_of[classes[int(np.argmax(score))]])
        out[t].append(int(r))
        assigned[classes[step_of[classes] == t]] += 1.0
    return [np.sort(np.array(o, dtype=np.int64)) for o in out]


def mib_partition(lists: ClassLists, task: Task) -> list[np.ndarray]:
    """Training rows per step of MiB's shipped ADE20K split (``(M_t,)`` int64, ascending).

    The steps are disjoint; together they hold every image with a foreground class. Only
    defined for ADE20K (MiB's VOC files equal :func:`~kdseg.datasets.continual.filter_images`).
    """
    if task.dataset != "ade20k":
        raise ConfigError(
            "train_selection",
            "'mib_partition' exists for ADE20K only (MiB's VOC files are the filter_images sets)",
        )
    if lists.num_classes != task.num_classes:
        raise ConfigError("class_lists", f"{lists.source}: {lists.num_classes} label ids")
    finer_name = PARTITION_GROUPING.get((task.dataset, task.name))
    if finer_name is None:
        return _greedy(lists, task.steps)
    finer = get_task(task.dataset, finer_name)
    parts = _greedy(lists, finer.steps)
    merged: list[list[np.ndarray]] = [[] for _ in task.steps]
    for fine_step, classes in enumerate(finer.steps):
        owners = {t for t, cl in enumerate(task.steps) if set(classes) <= set(cl)}
        if len(owners) != 1:
            raise ConfigError("task", f"{finer_name} does not refine {task.name}")
        merged[owners.pop()].append(parts[fine_step])
    return [np.sort(np.concatenate(m)) for m in merged]
