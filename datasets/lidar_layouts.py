"""LiDAR dataset layouts: what budget splits, training and evaluation need of a dataset format.

A layout names its frames ``(group, index)``: a SemanticKITTI sequence and scan
(``("08", 0)``), or a nuScenes scene and the position of a labelled keyframe in it
(``("scene-0061", 0)``, :mod:`kdseg.datasets.nuscenes_layout`). It splits the groups into
training and validation ones, reads a frame's points ``(N, 4)`` (x, y, z in metres in the LiDAR
frame, remission or intensity in [0, 1]) with its train ids, and checks every file before a job
uses it. Everything the workflow does with a dataset goes through :func:`open_layout`, chosen by
the dataset's ``format`` in ``config/config.yaml`` (``kdseg ... --data-format``).

The logic shared by all formats lives here: the frames of a part, the training fingerprint, the
budget split and its check against the data (:meth:`LidarLayout.check_split`).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from kdseg.budgets import FrameId, Split, make_split
from kdseg.errors import ConfigError, DataFormatError

#: ``--data-format`` values (the ``format`` of a dataset in the workflow config)
FORMATS: tuple[str, ...] = ("semantickitti", "nuscenes")


class LidarLayout(ABC):
    """One labelled LiDAR dataset on disk (subclasses: one per format)."""

    format: ClassVar[str]
    class_names: ClassVar[tuple[str, ...]]
    group_kind: ClassVar[str]
    """what a group is called in messages: ``sequence`` or ``scene``"""
    supervisions: ClassVar[tuple[str, ...]] = ("labels",)
    """label kinds a budget may read: ``labels`` (dense) and, where they exist, ``scribbles``"""
    unsupported_inputs: ClassVar[frozenset[str]] = frozenset()
    """method inputs (:mod:`kdseg.inputs`) this format cannot feed (e.g. camera features)"""
    versioned: ClassVar[bool] = False
    """whether a root holds several releases, one of which ``--data-version`` names"""

    root: Path
    version: str | None = None

    # -------------------------------------------------------------- per format
    @abstractmethod
    def groups(self) -> dict[str, tuple[str, ...]]:
        """``{"train": (...), "val": (...)}``: the groups of each part present on disk;
        :class:`DataFormatError` when no training group is present."""

    @abstractmethod
    def expected_groups(self, part: str) -> list[str]:
        """The groups of ``part`` the format's split defines (present or not)."""

    @abstractmethod
    def group_frames(self, group: str) -> list[int]:
        """Frame indices of ``group``, sorted."""

    @abstractmethod
    def scan_path(self, frame: FrameId) -> Path:
        """The point file of ``frame``."""

    @abstractmethod
    def label_path(self, frame: FrameId, kind: str) -> Path:
        """The label file of ``frame`` of ``kind`` (one of :attr:`supervisions`)."""

    @abstractmethod
    def read(self, frame: FrameId, supervision: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(points (N, 4) float32, labels (N,) train ids with 255 = ignore, labelled (N,)
        bool)``; ``labels`` are the dense ground truth, ``labelled`` marks the points
        ``supervision`` (one of :attr:`supervisions`) labels."""

    @abstractmethod
    def check(self) -> dict[str, Any]:
        """Check every training and validation frame's files; return the dataset's record
        (``root``, ``format``, ``split``, ``frames`` per group, ``train_fingerprint``, ...).
        The first problem raises :class:`DataFormatError` naming the file."""

    @property
    def data_dir(self) -> Path:
        """The folder named when the dataset as a whole is at fault."""
        return self.root

    # ------------------------------------------------------------------ shared
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split_frames(self, part: str) -> list[FrameId]:
        """All ``(group, index)`` frames of ``part`` ("train" or "val"), sorted."""
        return [(g, i) for g in self.groups()[part] for i in self.group_frames(g)]

    def validation_frames(self) -> list[FrameId]:
        """The validation frames; :class:`DataFormatError` when there are none (a run could
        train but never be scored)."""
        parts = self.groups()
        frames = self.split_frames("val")
        if not frames:
            raise DataFormatError(
                self.data_dir,
                f"no validation scans (validation {self.group_kind}s "
                f"{self.expected_groups('val')}, present: {list(parts['val'])}); a run could "
                "not be scored",
            )
        return frames

    def training_fingerprint(self) -> str:
        """Digest (16 hex digits) of the training scans: names and file sizes. Recorded in a
        split file when it is drawn and compared before training."""
        return self._fingerprint(self.split_frames("train"))

    def _fingerprint(self, frames: list[FrameId]) -> str:
        digest = hashlib.sha256()
        for group, idx in frames:
            size = self.scan_path((group, idx)).stat().st_size
            digest.update(f"{group}/{idx:06d} {size}\n".encode())
        return digest.hexdigest()[:16]

    def check_supervision(self, budget: str) -> None:
        """Refuse a budget whose labels this format does not have (e.g. nuScenes scribbles)."""
        from kdseg.budgets import parse_budget

        supervision = parse_budget(budget).supervision
        if supervision not in self.supervisions:
            raise ConfigError(
                "budget", f"{budget!r}: the {self.format} format has no {supervision} labels"
            )

    def draw_split(self, dataset: str, budget: str, seed: int) -> Split:
        """The budget split of the training scans, with their fingerprint recorded."""
        self.check_supervision(budget)
        frames = self.split_frames("train")
        return make_split(dataset, frames, budget, seed, fingerprint=self.training_fingerprint())

    def check_split(self, split: Split, path: str | Path, dataset: str | None = None) -> None:
        """Check a split read from ``path`` against this dataset before training.

        Refused (:class:`DataFormatError` naming the split file or the missing file): a split
        made for another dataset name than ``dataset`` (when given) or for other training scans
        (fingerprint), a listed scan that does not exist or lies outside the training groups (a
        validation scan would leak into training), a training scan the split leaves out, and a
        labelled scan without the label file its supervision reads. The split's seed may differ
        from the run's (one fixed split serves every seed).
        """
        path = Path(path)
        if dataset is not None and split.dataset != dataset:
            raise DataFormatError(
                path, f"was made for dataset {split.dataset!r}, not {dataset!r} (--dataset)"
            )
        if split.supervision not in self.supervisions:
            raise DataFormatError(
                path, f"reads {split.supervision} labels, which the {self.format} format has not"
            )
        parts = self.groups()
        frames = self.split_frames("train")
        train = set(frames)
        fingerprint = self._fingerprint(frames)
        other = (
            ""
            if split.fingerprint == fingerprint
            else f"; it was drawn from other training scans (fingerprint "
            f"{split.fingerprint or 'none'}, the data at {self.root} give {fingerprint}): "
            "regenerate it with `kdseg split`"
        )
        kind = self.group_kind
        for what, listed in (("labelled", split.labelled), ("unlabelled", split.unlabelled)):
            for group, idx in listed:
                if (group, idx) in train:
                    continue
                where = f"{what} scan {group}/{idx:06d}"
                if group in parts["val"]:
                    problem = f"{where} is in validation {kind} {group} (training on it would leak)"
                elif group not in parts["train"]:
                    problem = f"{where} is not in a training {kind} {list(parts['train'])}"
                else:
                    problem = f"{where}: {self.scan_path((group, idx))} does not exist"
                raise DataFormatError(path, problem + other)
        if other:
            raise DataFormatError(path, other[2:].replace("it was", "was", 1))
        missing = sorted(train - set(split.labelled) - set(split.unlabelled))
        if missing:
            group, idx = missing[0]
            raise DataFormatError(
                path, f"leaves out {len(missing)} training scans (first {group}/{idx:06d})"
            )
        for frame in split.labelled:
            label = self.label_path(frame, split.supervision)
            if not label.is_file():
                raise DataFormatError(
                    label, f"{split.supervision} file of a labelled scan of {path} is missing"
                )


def class_order(names: list[str] | tuple[str, ...]) -> list[str]:
    """``names`` (e.g. the keys of a run record's ``per_class_iou``, which JSON files keep
    sorted) in train-id order: that of the format whose classes they are, else as given."""
    for data_format in FORMATS:
        known = layout_class(data_format).class_names
        if set(known) == set(names) and len(known) == len(names):
            return list(known)
    return list(names)


def layout_class(data_format: str) -> type[LidarLayout]:
    """The :class:`LidarLayout` subclass of a format (without opening any data)."""
    if data_format == "semantickitti":
        from kdseg.datasets.splits import SemanticKittiLayout

        return SemanticKittiLayout
    if data_format == "nuscenes":
        from kdseg.datasets.nuscenes_layout import NuScenesLayout

        return NuScenesLayout
    raise ConfigError("--data-format", f"unknown format {data_format!r}; known: {list(FORMATS)}")


def open_layout(
    root: str | Path, data_format: str = "semantickitti", version: str | None = None
) -> LidarLayout:
    """The layout of the dataset at ``root`` in ``data_format`` (nuScenes: its ``version``,
    e.g. ``v1.0-trainval``); :class:`ConfigError` for an unknown format or a missing version."""
    cls = layout_class(data_format)
    if not cls.versioned:
        if version is not None:
            raise ConfigError("--data-version", f"the {data_format} format has no versions")
        return cls(root)  # type: ignore[call-arg]
    if version is None:
        raise ConfigError("--data-version", f"the {data_format} format needs one")
    return cls(root, version)  # type: ignore[call-arg]
