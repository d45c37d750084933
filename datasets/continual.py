"""Continual (class-incremental) semantic segmentation tasks of MiB, PLOP and LGKD, and their
image-selection and label-masking rules (``shared/specs/datasets.md`` §8).

A task is a sequence of steps, each a tuple of label ids; step 0 holds background (0). Label
ids are the dataset's own: VOC 0..20 (0 background), ADE20K 0..150 (0 = "other objects", which
the continual protocol trains as background, ``num_classes = 151``).

Rules, for step ``t`` with current classes ``C_t`` (background removed), old classes ``O_t``
(all classes of steps < t, background included) and future classes ``F_t``:

* training images (``filter_images``, run over the id-sorted training lists):
  ``overlap`` keeps an image if it contains a class of ``C_t``; ``disjoint`` additionally drops
  images that contain a class of ``F_t``;
* training labels (``data_masking="current"``): classes of ``C_t`` keep their label (as their
  position in the task's class order), old *and* future classes become 0, 255 stays 255;
* test images: the validation set filtered with the overlap rule on all classes seen so far
  (``O_t ∪ C_t``); labels of unseen classes become 0;
* validation during training (MiB's ``val-<t>``): the validation set filtered with the overlap
  rule on ``C_t`` and masked like the training labels.

Named aliases follow the code bases: ``15-5s`` = ``15-1`` and ``50`` = ``50-50``; ``offline`` (=
``joint``) is the one-step task with every class (the joint-training upper bound).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kdseg import IGNORE_INDEX
from kdseg.errors import ConfigError

from .continual_lists import ClassLists

Setting = Literal["overlap", "disjoint"]
SETTINGS: tuple[str, ...] = ("overlap", "disjoint")
DATASET_CLASSES: dict[str, int] = {"voc": 21, "ade20k": 151}
"""Label ids per dataset in the continual label space, background 0 included."""


@dataclass(frozen=True)
class Task:
    """A class-incremental task.

    Attributes:
        dataset: ``"voc"`` or ``"ade20k"``.
        name: canonical name (``"15-1"``, ``"100-50"``, ...).
        steps: class ids per step; step 0 starts with 0 (background); steps are disjoint and
            cover ``0..K-1``.
        source: where the definition comes from (code base and file).
    """

    dataset: str
    name: str
    steps: tuple[tuple[int, ...], ...]
    source: str = ""

    def __post_init__(self) -> None:
        k = DATASET_CLASSES.get(self.dataset)
        if k is None:
            raise ConfigError("dataset", f"unknown dataset {self.dataset!r}")
        flat = [c for s in self.steps for c in s]
        if not self.steps or not self.steps[0] or self.steps[0][0] != 0:
            raise ConfigError("task", f"{self.name}: step 0 must start with background 0")
        if sorted(flat) != list(range(k)):
            raise ConfigError("task", f"{self.name}: steps must partition the class ids 0..{k - 1}")
        if any(not s for s in self.steps):
            raise ConfigError("task", f"{self.name}: empty step")

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @property
    def num_classes(self) -> int:
        """All label ids of the dataset, background included."""
        return DATASET_CLASSES[self.dataset]

    def _check(self, step: int) -> None:
        if not 0 <= step < self.num_steps:
            raise ConfigError("step", f"task {self.name} has steps 0..{self.num_steps - 1}")

    def classes(self, step: int) -> tuple[int, ...]:
        """Classes learnt at ``step`` (step 0 includes background)."""
        self._check(step)
        return self.steps[step]

    def new_classes(self, step: int) -> tuple[int, ...]:
        """``C_t``: the step's classes without background."""
        return tuple(c for c in self.classes(step) if c != 0)

    def old_classes(self, step: int) -> tuple[int, ...]:
        """``O_t``: classes of the previous steps (background included once step >= 1)."""
        self._check(step)
        return tuple(c for s in self.steps[:step] for c in s)

    def seen_classes(self, step: int) -> tuple[int, ...]:
        """Classes of steps ``0..step`` in task order: the output channels of the step's model."""
        self._check(step)
        return tuple(c for s in self.steps[: step + 1] for c in s)

    def future_classes(self, step: int) -> tuple[int, ...]:
        """``F_t``: classes of the later steps."""
        self._check(step)
        return tuple(c for s in self.steps[step + 1 :] for c in s)

    def train_lut(self, step: int) -> np.ndarray:
        """``(256,)`` uint8 map of dataset label ids to the step's training labels.

        Current classes -> their channel (position in :meth:`seen_classes`); background, old,
        future and unknown ids -> 0; 255 -> 255.
        """
        lut = np.zeros(256, dtype=np.uint8)
        order = self.seen_classes(step)
        for c in self.classes(step):
            lut[c] = order.index(c)
        lut[IGNORE_INDEX] = IGNORE_INDEX
        return lut

    def eval_lut(self, step: int) -> np.ndarray:
        """``(256,)`` uint8 map for testing after ``step``: seen classes -> their channel,
        unseen ids -> 0, 255 -> 255."""
        lut = np.zeros(256, dtype=np.uint8)
        for channel, c in enumerate(self.seen_classes(step)):
            lut[c] = channel
        lut[IGNORE_INDEX] = IGNORE_INDEX
        return lut

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "name": self.name,
            "steps": [list(s) for s in self.steps],
            "source": self.source,
        }


def _incremental(dataset: str, name: str, base: int, sizes: Sequence[int], src: str) -> Task:
    steps = [tuple(range(base + 1))]
    first = base + 1
    for size in sizes:
        steps.append(tuple(range(first, first + size)))
        first += size
    return Task(dataset, name, tuple(steps), src)


_MIB = "MiB/PLOP/LGKD tasks.py"
TASKS: dict[tuple[str, str], Task] = {
    (t.dataset, t.name): t
    for t in (
        _incremental("voc", "offline", 20, [], _MIB),
        _incremental("voc", "19-1", 19, [1], _MIB),
        _incremental("voc", "15-5", 15, [5], _MIB),
        _incremental("voc", "15-1", 15, [1] * 5, _MIB + " ('15-5s')"),
        _incremental("voc", "10-1", 10, [1] * 10, "PLOP/LGKD tasks.py"),
        _incremental("voc", "5-3", 5, [3] * 5, "SSUL utils/tasks.py (not in MiB/PLOP/LGKD)"),
        _incremental("ade20k", "offline", 150, [], _MIB),
        _incremental("ade20k", "100-50", 100, [50], _MIB),
        _incremental("ade20k", "100-10", 100, [10] * 5, _MIB),
        _incremental("ade20k", "100-5", 100, [5] * 10, "PLOP/LGKD tasks.py"),
        _incremental("ade20k", "50-50", 50, [50, 50], _MIB + " ('50')"),
    )
}
"""Every built-in task by ``(dataset, canonical name)``."""

ALIASES: dict[tuple[str, str], str] = {
    ("voc", "15-5s"): "15-1",
    ("voc", "joint"): "offline",
    ("ade20k", "50"): "50-50",
    ("ade20k", "joint"): "offline",
}


def get_task(dataset: str, name: str) -> Task:
    """The built-in task ``name`` of ``dataset`` (aliases accepted, e.g. ``"15-5s"``)."""
    if dataset not in DATASET_CLASSES:
        raise ConfigError("dataset", f"unknown dataset {dataset!r}; choose from voc, ade20k")
    key = (dataset, ALIASES.get((dataset, name), name))
    if key not in TASKS:
        names = sorted(n for d, n in TASKS if d == dataset)
        raise ConfigError("task", f"unknown {dataset} task {name!r}; choose from {names}")
    return TASKS[key]


def base_task(dataset: str, name: str) -> str:
    """The canonical task among the built-in ones with the same step 0 as ``name``: the first
    by name (VOC ``15-5`` and ``15-1`` -> ``15-1``; ADE20K ``100-50``, ``100-10``, ``100-5`` ->
    ``100-10``; a task alone with its step 0 -> itself).

    Step 0 trains on the images that hold a step-0 class (overlap) and none of the other
    classes (disjoint), with the same labels: it depends on the step-0 classes only, so tasks
    that share them share one step-0 run (the workflow trains it under this task's name).
    """
    task = get_task(dataset, name)
    same = sorted(n for (d, n), t in TASKS.items() if d == dataset and t.steps[0] == task.steps[0])
    return same[0] if task.num_steps > 1 else task.name


def _check_lists(lists: ClassLists, task: Task) -> None:
    if lists.num_classes != task.num_classes:
        raise ConfigError(
            "class_lists",
            f"{lists.source or 'class lists'} have {lists.num_classes} label ids, "
            f"task {task.dataset}/{task.name} needs {task.num_classes}",
        )


def filter_images(lists: ClassLists, task: Task, step: int, setting: str) -> np.ndarray:
    """Training rows of ``step`` (ascending) by MiB's ``filter_images`` rule.

    ``overlap``: the image contains a class of ``C_t``. ``disjoint``: additionally it contains
    no class of ``F_t`` (every class is background, ignore, old or current).
    Returns ``(M,)`` int64 rows of ``lists``.
    """
    _check_lists(lists, task)
    if setting not in SETTINGS:
        raise ConfigError("setting", f"unknown setting {setting!r}; choose from {SETTINGS}")
    keep = lists.presence[:, list(task.new_classes(step))].any(axis=1)
    future = list(task.future_classes(step))
    if setting == "disjoint" and future:
        keep &= ~lists.presence[:, future].any(axis=1)
    return np.flatnonzero(keep).astype(np.int64)


def select_test_images(lists: ClassLists, task: Task, step: int) -> np.ndarray:
    """Test rows after ``step``: images with a class seen so far (background excluded)."""
    _check_lists(lists, task)
    seen = [c for c in task.seen_classes(step) if c != 0]
    return np.flatnonzero(lists.presence[:, seen].any(axis=1)).astype(np.int64)


def select_val_images(lists: ClassLists, task: Task, step: int) -> np.ndarray:
    """Validation rows during ``step`` (MiB's ``val-<t>``): images with a class of ``C_t``."""
    return filter_images(lists, task, step, "overlap")
