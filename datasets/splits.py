"""The SemanticKITTI layout: which sequences are for training and which for validation, its
frames, files and checks (:class:`SemanticKittiLayout`, a :class:`~.lidar_layouts.LidarLayout`).

Real SemanticKITTI: train = 00-07, 09, 10; valid = 08; test = 11-21 (no labels).
The embedded synthetic datasets record their own lists in ``meta.json`` (``train_sequences``,
``val_sequences``), written last by the generator, so its presence also marks a complete dataset.

The module-level functions take a dataset root and serve the SemanticKITTI layout (the 2D
teacher, the figures and the tests use them); the workflow opens any format with
:func:`kdseg.datasets.lidar_layouts.open_layout`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kdseg.budgets import FrameId, Split
from kdseg.errors import DataFormatError

from .lidar_layouts import LidarLayout
from .semantickitti import SemanticKITTI
from .semantickitti_labels import CLASS_NAMES

OFFICIAL_SPLIT: dict[str, tuple[str, ...]] = {
    "train": ("00", "01", "02", "03", "04", "05", "06", "07", "09", "10"),
    "val": ("08",),
    "test": tuple(f"{i:02d}" for i in range(11, 22)),
}


class SemanticKittiLayout(LidarLayout):
    """A SemanticKITTI-layout root (real, or the embedded synthetic data with its meta.json)."""

    format = "semantickitti"
    class_names = CLASS_NAMES
    group_kind = "sequence"
    supervisions = ("labels", "scribbles")

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.ds = SemanticKITTI(root)

    @property
    def data_dir(self) -> Path:
        return self.ds.sequences_dir

    def _declared(self) -> dict[str, tuple[str, ...]]:
        meta = self.root / "meta.json"
        if not meta.is_file():
            return {k: OFFICIAL_SPLIT[k] for k in ("train", "val")}
        try:
            obj = json.loads(meta.read_text())
            return {"train": tuple(obj["train_sequences"]), "val": tuple(obj["val_sequences"])}
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataFormatError(meta, f"malformed dataset metadata: {exc!r}") from None

    def groups(self) -> dict[str, tuple[str, ...]]:
        split = self._declared()
        present = set(self.ds.sequences())
        out = {k: tuple(s for s in v if s in present) for k, v in split.items()}
        if not out["train"]:
            raise DataFormatError(
                self.root, f"no training sequence present (expected some of {split['train']})"
            )
        return out

    def expected_groups(self, part: str) -> list[str]:
        return list(self._declared()[part])

    def group_frames(self, group: str) -> list[int]:
        return self.ds.frame_ids(group)

    def scan_path(self, frame: FrameId) -> Path:
        return self.ds.path(frame[0], "velodyne", frame[1])

    def label_path(self, frame: FrameId, kind: str) -> Path:
        return self.ds.path(frame[0], kind, frame[1])

    def read(self, frame: FrameId, supervision: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f = self.ds.frame(frame[0], frame[1], supervision=supervision)
        assert f.labels is not None
        return f.points, f.labels, f.labelled

    def check(self) -> dict[str, Any]:
        """Every training and validation scan: a ``.bin`` of a positive multiple of 16 bytes, a
        ``labels/`` file of 4 bytes per point of its scan, a ``scribbles/`` file of the same size
        where one exists, a pose per scan; at least one validation scan; and one whole frame per
        sequence read (calibration, label ids, finite coordinates)."""
        ds, parts = self.ds, self.groups()
        self.validation_frames()
        frames: dict[str, int] = {}
        scribbles: dict[str, int] = {}
        for seq in [*parts["train"], *parts["val"]]:
            ids = ds.frame_ids(seq)
            if not ids:
                raise DataFormatError(ds.seq_dir(seq) / "velodyne", "no scans")
            scribbles[seq] = 0
            for idx in ids:
                points = scan_points(ds.path(seq, "velodyne", idx), 16)
                check_label_size(ds.path(seq, "labels", idx), points, 4)
                scribble = ds.path(seq, "scribbles", idx)
                if scribble.is_file():
                    check_label_size(scribble, points, 4)
                    scribbles[seq] += 1
            poses = ds.lidar_poses(seq).shape[0]
            if poses <= ids[-1]:
                raise DataFormatError(
                    ds.seq_dir(seq) / "poses.txt", f"has {poses} poses but scan {ids[-1]} exists"
                )
            ds.frame(seq, ids[0])  # reads scan, labels, calib and poses: fails loudly if broken
            frames[seq] = len(ids)
        return {
            "root": str(self.root.resolve()),
            "split": {k: list(v) for k, v in parts.items()},
            "frames": frames,
            "scribbles": {k: v for k, v in scribbles.items() if v},
            "train_fingerprint": self.training_fingerprint(),
        }


def scan_points(path: Path, bytes_per_point: int) -> int:
    """Number of points of a scan file, from its size (checked, not read)."""
    if not path.is_file():
        raise DataFormatError(path, "scan file does not exist")
    size = path.stat().st_size
    if size == 0 or size % bytes_per_point:
        raise DataFormatError(
            path,
            f"size {size} bytes is not a positive multiple of {bytes_per_point} "
            f"({bytes_per_point // 4} float32 per point)",
        )
    return size // bytes_per_point


def check_label_size(path: Path, points: int, bytes_per_label: int) -> None:
    """A label file must hold ``bytes_per_label`` bytes per point of its scan."""
    if not path.is_file():
        raise DataFormatError(path, "label file does not exist")
    size = path.stat().st_size
    if size != bytes_per_label * points:
        raise DataFormatError(
            path,
            f"size {size} bytes, but its scan has {points} points "
            f"({bytes_per_label} byte{'s' * (bytes_per_label > 1)} per point)",
        )


def sequence_split(root: str | Path) -> dict[str, tuple[str, ...]]:
    """``{"train": (...), "val": (...)}`` for the dataset at ``root``, restricted to what exists."""
    return SemanticKittiLayout(root).groups()


def split_frames(root: str | Path, part: str) -> list[tuple[str, int]]:
    """All ``(sequence, index)`` frames of ``part`` ("train" or "val"), sorted."""
    return SemanticKittiLayout(root).split_frames(part)


def validation_frames(root: str | Path) -> list[tuple[str, int]]:
    """The validation frames of ``root`` (:meth:`LidarLayout.validation_frames`)."""
    return SemanticKittiLayout(root).validation_frames()


def training_fingerprint(root: str | Path) -> str:
    """Digest (16 hex digits) of the training scans of ``root``: names and file sizes."""
    return SemanticKittiLayout(root).training_fingerprint()


def draw_split(root: str | Path, dataset: str, budget: str, seed: int) -> Split:
    """The budget split of the training scans of ``root``, with their fingerprint recorded."""
    return SemanticKittiLayout(root).draw_split(dataset, budget, seed)


def check_split(
    split: Split, path: str | Path, root: str | Path, dataset: str | None = None
) -> None:
    """Check a split read from ``path`` against the dataset at ``root`` before training
    (:meth:`LidarLayout.check_split`)."""
    SemanticKittiLayout(root).check_split(split, path, dataset)


def check_dataset(root: str | Path) -> dict[str, object]:
    """Check a SemanticKITTI-layout root before any job uses it; return its record
    (:meth:`SemanticKittiLayout.check`)."""
    return SemanticKittiLayout(root).check()
