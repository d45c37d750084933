"""The nuScenes-lidarseg layout for budget splits, training and evaluation (LaserMix's protocol).

Frames are the labelled keyframes (samples whose LIDAR_TOP scan has a lidarseg record), named
``(scene, k)``: the ``k``-th labelled keyframe of the scene in time order. Training scenes are
the official ``train`` split, validation scenes ``val`` (:mod:`.nuscenes_splits`, copied from
nuscenes-devkit; v1.0-mini: ``mini_train`` / ``mini_val``), restricted to the scenes the
release's tables list with labelled keyframes. Budgets are uniform scan budgets over the training
keyframes (``scans-P``, ``full``); nuScenes has no scribbles. Points are read as ``(N, 4)``: x, y,
z and the intensity divided by 255 (the 0-255 intensity of the ``.pcd.bin`` brought to the [0, 1]
range of SemanticKITTI's remission, so one network input convention holds; the ring index is
dropped); labels through the 32 -> 16 lidarseg map (:mod:`.nuscenes`).

Opening a release reads its JSON tables once per process (:class:`.nuscenes.NuScenes`; for
v1.0-trainval that includes the large ``sample_data.json``, so a process needs memory for it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kdseg.budgets import FrameId
from kdseg.errors import ConfigError, DataFormatError

from .lidar_layouts import LidarLayout
from .nuscenes import CLASSES, NuScenes, lidarseg_to_train, read_lidarseg, read_points
from .nuscenes_splits import SPLITS
from .splits import check_label_size, scan_points

#: the intensity of a ``.pcd.bin`` is 0..255; the network sees it in [0, 1]
INTENSITY_SCALE = 255.0


class NuScenesLayout(LidarLayout):
    """The labelled keyframes of one nuScenes release (``version``) under ``root``."""

    format = "nuscenes"
    class_names = CLASSES
    group_kind = "scene"
    supervisions = ("labels",)
    unsupported_inputs = frozenset({"features_2d"})  # the 2D teacher reads the KITTI camera
    versioned = True

    def __init__(self, root: str | Path, version: str) -> None:
        if version not in SPLITS:
            raise ConfigError(
                "--data-version",
                f"no official scene split of {version!r} in kdseg (known: {sorted(SPLITS)})",
            )
        self.root, self.version = Path(root), version
        self.nus = NuScenes(root, version)
        self._frames: dict[str, list[tuple[str, str]]] | None = None

    @property
    def data_dir(self) -> Path:
        return self.nus.table_dir

    def _index(self) -> dict[str, list[tuple[str, str]]]:
        """``{scene: [(scan file, label file) of each labelled keyframe, in time order]}``."""
        if self._frames is None:
            samples, sample_data = self.nus.table("sample"), self.nus.table("sample_data")
            keyed: dict[str, list[tuple[int, str, str]]] = {}
            for sd_token, entry in self.nus.labelled_sample_data().items():
                sd = sample_data.get(sd_token)
                if sd is None:
                    raise DataFormatError(
                        self.nus.table_dir / "lidarseg.json",
                        f"record {entry.get('token')} names sample_data {sd_token}, which "
                        "sample_data.json lacks",
                    )
                scene = self.nus.scene_name(sd["sample_token"])
                stamp = int(samples[sd["sample_token"]]["timestamp"])
                keyed.setdefault(scene, []).append((stamp, sd["filename"], entry["filename"]))
            self._frames = {
                scene: [(scan, label) for _, scan, label in sorted(rows)]
                for scene, rows in keyed.items()
            }
        return self._frames

    def groups(self) -> dict[str, tuple[str, ...]]:
        present = self._index()
        out = {
            part: tuple(s for s in scenes if s in present)
            for part, scenes in SPLITS[self.version].items()
        }
        if not out["train"]:
            raise DataFormatError(
                self.nus.table_dir / "lidarseg.json",
                f"no labelled keyframe in a training scene of {self.version} "
                f"(expected some of {list(SPLITS[self.version]['train'][:3])}...)",
            )
        return out

    def expected_groups(self, part: str) -> list[str]:
        return list(SPLITS[self.version][part])

    def group_frames(self, group: str) -> list[int]:
        return list(range(len(self._index().get(group, []))))

    def _files(self, frame: FrameId) -> tuple[str, str]:
        rows = self._index().get(frame[0], [])
        if not 0 <= frame[1] < len(rows):
            raise DataFormatError(
                self.nus.table_dir / "lidarseg.json",
                f"scene {frame[0]} has no labelled keyframe {frame[1]} ({len(rows)} in all)",
            )
        return rows[frame[1]]

    def scan_path(self, frame: FrameId) -> Path:
        return self.root / self._files(frame)[0]

    def label_path(self, frame: FrameId, kind: str) -> Path:
        if kind != "labels":
            raise ValueError(f"nuScenes has only dense labels, not {kind!r}")
        return self.root / self._files(frame)[1]

    def read(self, frame: FrameId, supervision: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if supervision != "labels":
            raise ValueError(f"nuScenes has only dense labels, not {supervision!r}")
        raw_points = read_points(self.scan_path(frame))
        raw = read_lidarseg(self.label_path(frame, "labels"), raw_points.shape[0])
        points = np.empty((raw_points.shape[0], 4), dtype=np.float32)
        points[:, :3] = raw_points[:, :3]
        points[:, 3] = raw_points[:, 3] / np.float32(INTENSITY_SCALE)
        labels = lidarseg_to_train(raw).astype(np.int64)
        return points, labels, labels != 255

    def check(self) -> dict[str, Any]:
        """Every training and validation keyframe: a ``.pcd.bin`` of a positive multiple of 20
        bytes and a ``_lidarseg.bin`` of one byte per point; at least one validation keyframe;
        and the first keyframe of every scene read completely (finite points, ring indices,
        category indices)."""
        parts = self.groups()
        self.validation_frames()
        frames: dict[str, int] = {}
        for scene in [*parts["train"], *parts["val"]]:
            ids = self.group_frames(scene)
            for idx in ids:
                points = scan_points(self.scan_path((scene, idx)), 20)
                check_label_size(self.label_path((scene, idx), "labels"), points, 1)
            self.read((scene, ids[0]), "labels")
            frames[scene] = len(ids)
        return {
            "root": str(self.root.resolve()),
            "format": self.format,
            "version": self.version,
            "split": {k: list(v) for k, v in parts.items()},
            "frames": frames,
            "train_fingerprint": self.training_fingerprint(),
        }
