"""Persisted per-step index files of a continual task (what a workflow rule writes and every
step's training run reads).

Layout of ``out/`` (all JSON, written atomically; ``task.json`` last, so its presence means
the split is complete)::

    step-<t>.json   one step: the task (steps), setting, train selection, the step's classes,
                    and the image ids (and rows of the id-sorted class lists) of its
                    train / val / test sets
    task.json       the task, options, per-step counts, sha256 of the class-list files

``train_selection`` (the "ADE caveat" of ``shared/specs/datasets.md`` §8.2):

* ``filter_images`` (default): MiB/PLOP/LGKD's rule with the ``setting`` (overlap / disjoint);
  what PLOP and LGKD (``--overlap``) generate, and what MiB ships for VOC.
* ``mib_partition``: MiB's shipped ADE20K files (:mod:`.continual_partition`), the split MiB
  uses without ``--overlap``; ADE20K with ``setting="disjoint"`` only.

Command line (for a workflow rule): :func:`main`, e.g.
``python -m kdseg.datasets.continual_split --class-lists ../shared/realdata/voc/cl_metadata
--dataset voc --task 15-1 --setting overlap --out results/splits/continual/voc/15-1-overlap``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kdseg.errors import ConfigError, DataFormatError
from kdseg.io import write_json

from .continual import (
    DATASET_CLASSES,
    SETTINGS,
    Task,
    filter_images,
    get_task,
    select_test_images,
    select_val_images,
)
from .continual_lists import ClassLists, read_class_lists
from .continual_partition import mib_partition

FORMAT: str = "kdseg.continual-step"
FORMAT_VERSION: int = 1
TRAIN_SELECTIONS: tuple[str, ...] = ("filter_images", "mib_partition")
TRAIN_LISTS, VAL_LISTS = "train_cls.txt", "val_cls.txt"


@dataclass(frozen=True)
class StepSplit:
    """The images and label rules of one step.

    Attributes:
        task, step: the task and the step index.
        setting: ``"overlap"`` or ``"disjoint"``.
        train_selection: ``"filter_images"`` or ``"mib_partition"``.
        train, val, test: image ids (sorted) of the training images (from the training
            lists), the in-training validation images and the test images (both from the
            validation lists).
        train_rows: rows of ``train`` in the id-sorted training lists (MiB's ``.npy`` indices).
    """

    task: Task
    step: int
    setting: str
    train_selection: str
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    train_rows: tuple[int, ...]

    @property
    def classes(self) -> tuple[int, ...]:
        return self.task.classes(self.step)

    @property
    def channels(self) -> tuple[int, ...]:
        """Label id of each output channel of the step's model (classes seen so far)."""
        return self.task.seen_classes(self.step)

    def train_lut(self) -> np.ndarray:
        """``(256,)`` uint8 label map of training (and ``val``) masks; see :class:`Task`."""
        return self.task.train_lut(self.step)

    def eval_lut(self) -> np.ndarray:
        """``(256,)`` uint8 label map of ``test`` masks; see :class:`Task`."""
        return self.task.eval_lut(self.step)

    def to_dict(self) -> dict[str, Any]:
        t = self.task
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "task": t.to_dict(),
            "step": self.step,
            "num_steps": t.num_steps,
            "setting": self.setting,
            "train_selection": self.train_selection,
            "classes": list(t.classes(self.step)),
            "old_classes": list(t.old_classes(self.step)),
            "future_classes": list(t.future_classes(self.step)),
            "channels": list(self.channels),
            "train": list(self.train),
            "train_rows": list(self.train_rows),
            "val": list(self.val),
            "test": list(self.test),
        }


def _ids(lists: ClassLists, rows: np.ndarray) -> tuple[str, ...]:
    return tuple(lists.ids[int(r)] for r in rows)


def build_task_split(
    train_lists: ClassLists,
    val_lists: ClassLists,
    task: Task,
    setting: str,
    train_selection: str = "filter_images",
) -> list[StepSplit]:
    """Every step of ``task`` (see the module docstring for the options)."""
    if setting not in SETTINGS:
        raise ConfigError("setting", f"unknown setting {setting!r}; choose from {SETTINGS}")
    if train_selection not in TRAIN_SELECTIONS:
        raise ConfigError(
            "train_selection", f"unknown {train_selection!r}; choose from {TRAIN_SELECTIONS}"
        )
    if train_selection == "mib_partition":
        if setting != "disjoint":
            raise ConfigError(
                "train_selection",
                "'mib_partition' is MiB's split without --overlap: use setting 'disjoint' "
                "(with --overlap MiB, PLOP and LGKD generate the filter_images sets)",
            )
        train_rows = mib_partition(train_lists, task)
    else:
        train_rows = [filter_images(train_lists, task, t, setting) for t in range(task.num_steps)]
    out = []
    for t in range(task.num_steps):
        out.append(
            StepSplit(
                task=task,
                step=t,
                setting=setting,
                train_selection=train_selection,
                train=_ids(train_lists, train_rows[t]),
                val=_ids(val_lists, select_val_images(val_lists, task, t)),
                test=_ids(val_lists, select_test_images(val_lists, task, t)),
                train_rows=tuple(int(r) for r in train_rows[t]),
            )
        )
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_task_split(
    class_lists: str | Path,
    dataset: str,
    task: str,
    setting: str,
    out: str | Path,
    train_selection: str = "filter_images",
) -> Path:
    """Write the per-step index files of ``task`` into ``out``; returns ``out/task.json``.

    Args:
        class_lists: folder with ``train_cls.txt`` and ``val_cls.txt`` (the ``cl_metadata``
            layout; the synthetic VOC generator writes the same files).
        dataset: ``"voc"`` or ``"ade20k"``.
        task: a task name of :func:`~kdseg.datasets.continual.get_task` (aliases accepted).
        setting: ``"overlap"`` or ``"disjoint"``.
        out: output folder (created).
        train_selection: ``"filter_images"`` or ``"mib_partition"``.
    """
    folder, out = Path(class_lists), Path(out)
    the_task = get_task(dataset, task)
    k = DATASET_CLASSES[dataset]
    train_path, val_path = folder / TRAIN_LISTS, folder / VAL_LISTS
    train = read_class_lists(train_path, k)
    val = read_class_lists(val_path, k)
    steps = build_task_split(train, val, the_task, setting, train_selection)
    for s in steps:
        write_json(out / f"step-{s.step}.json", s.to_dict(), indent=None)  # type: ignore[arg-type]
    summary = {
        "format": FORMAT + "s",
        "format_version": FORMAT_VERSION,
        "task": the_task.to_dict(),
        "setting": setting,
        "train_selection": train_selection,
        "counts": {
            part: [len(getattr(s, part)) for s in steps] for part in ("train", "val", "test")
        },
        "steps": [f"step-{s.step}.json" for s in steps],
        "class_lists": {
            "train": str(train_path),
            "train_sha256": _sha256(train_path),
            "val": str(val_path),
            "val_sha256": _sha256(val_path),
        },
    }
    write_json(out / "task.json", summary)
    return out / "task.json"


def load_step(path: str | Path) -> StepSplit:
    """Read a ``step-<t>.json`` written by :func:`write_task_split`."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "step index file does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"not valid JSON: {exc}") from None
    if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
        raise DataFormatError(
            path, f"not a {FORMAT} v{FORMAT_VERSION} file (format {data.get('format')!r})"
        )
    try:
        spec = data["task"]
        task = Task(spec["dataset"], spec["name"], tuple(tuple(s) for s in spec["steps"]))
        return StepSplit(
            task=task,
            step=int(data["step"]),
            setting=str(data["setting"]),
            train_selection=str(data["train_selection"]),
            train=tuple(data["train"]),
            val=tuple(data["val"]),
            test=tuple(data["test"]),
            train_rows=tuple(int(r) for r in data["train_rows"]),
        )
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise DataFormatError(path, f"malformed step file: {exc}") from None


def load_task_split(out: str | Path) -> list[StepSplit]:
    """Every step of a split folder, in order (``task.json`` must exist: the split is done)."""
    out = Path(out)
    summary_path = out / "task.json"
    if not summary_path.is_file():
        raise DataFormatError(summary_path, "missing: the split was never completed")
    try:
        names = json.loads(summary_path.read_text())["steps"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataFormatError(summary_path, f"malformed task.json: {exc}") from None
    return [load_step(out / name) for name in names]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of :func:`write_task_split`; prints the per-step counts."""
    parser = argparse.ArgumentParser(
        prog="kdseg.datasets.continual_split",
        description="Write the per-step index files (JSON) of a continual task.",
    )
    parser.add_argument("--class-lists", required=True, type=Path)
    parser.add_argument("--dataset", required=True, choices=sorted(DATASET_CLASSES))
    parser.add_argument("--task", required=True)
    parser.add_argument("--setting", default="overlap", choices=SETTINGS)
    parser.add_argument("--train-selection", default="filter_images", choices=TRAIN_SELECTIONS)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    path = write_task_split(
        args.class_lists, args.dataset, args.task, args.setting, args.out, args.train_selection
    )
    counts = json.loads(path.read_text())["counts"]
    for part in ("train", "val", "test"):
        print(f"{part}: {', '.join(str(n) for n in counts[part])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
