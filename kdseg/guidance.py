"""Per-point 2D guidance for training batches: the 2D teacher's cached features of a frame
(read by the ``features_2d`` input provider, :mod:`kdseg.inputs.features_2d`).

:class:`GuidanceStore` reads the cache written by :func:`kdseg.image2d.cache_features` (one
``.npz`` per frame plus ``manifest.json``) through :func:`kdseg.image2d.load_point_features` and
keeps every frame it has read in memory, compactly (the valid rows only, float16, as on disk),
like :class:`kdseg.lidar_data.FrameStore` does for the scans. :meth:`GuidanceStore.get` expands a
frame to one row per point, in the scan's point order, so the guidance of a cloud stays aligned
with its points through augmentation (which moves points but neither drops nor reorders them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kdseg import IGNORE_INDEX
from kdseg.budgets import FrameId
from kdseg.errors import DataFormatError


@dataclass(frozen=True)
class Guidance:
    """2D guidance of the ``N`` points of one frame.

    Attributes:
        features: ``(N, C)`` float32 teacher decoder features (zeros where not ``valid``).
        valid: ``(N,)`` bool, the point projects in front of the camera into the image.
        pred: ``(N,)`` int64 teacher class (train id; 255 where not ``valid``).
    """

    features: np.ndarray
    valid: np.ndarray
    pred: np.ndarray


@dataclass(frozen=True)
class _Compact:
    valid: np.ndarray  # (N,) bool
    features: np.ndarray  # (M, C) float16, the M valid rows in point order
    pred: np.ndarray  # (M,) uint8


class GuidanceStore:
    """Frames of a 2D feature cache held in memory once read.

    Args:
        cache_dir: folder of a complete cache (its ``manifest.json`` is written last).

    Raises:
        DataFormatError: naming ``manifest.json`` when the cache is incomplete or malformed.
    """

    def __init__(self, cache_dir: str | Path) -> None:
        from kdseg.image2d import read_manifest

        self.root = Path(cache_dir)
        manifest = read_manifest(self.root)
        if manifest is None:
            raise DataFormatError(
                self.root / "manifest.json",
                "no 2D feature cache manifest (incomplete cache; run `kdseg features`)",
            )
        for key in ("teacher_sha256", "feature_dim", "frames"):
            if key not in manifest:
                raise DataFormatError(self.root / "manifest.json", f"manifest lacks {key!r}")
        self.manifest: dict[str, Any] = manifest
        self.teacher_sha256: str = str(manifest["teacher_sha256"])
        self.feature_dim: int = int(manifest["feature_dim"])
        self._frames = set(manifest["frames"])
        self._cache: dict[FrameId, _Compact] = {}

    def get(self, frame: FrameId, num_points: int) -> Guidance:
        """The guidance of ``frame`` (a scan of ``num_points`` points), one row per point.

        Raises:
            DataFormatError: naming the cache file when the frame is not in the cache, was
                written by another teacher or has another point count.
        """
        if frame not in self._cache:
            from kdseg.image2d import load_point_features
            from kdseg.image2d.features import cache_path

            seq, idx = frame
            if f"{seq}/{int(idx):06d}" not in self._frames:
                raise DataFormatError(
                    cache_path(self.root, seq, idx), "frame is not listed in the cache manifest"
                )
            pf = load_point_features(self.root, seq, idx, num_points, self.teacher_sha256)
            v = pf.valid.astype(bool)
            self._cache[frame] = _Compact(
                v, pf.features[v].astype(np.float16), pf.pred[v].astype(np.uint8)
            )
        c = self._cache[frame]
        if c.valid.shape[0] != num_points:
            raise DataFormatError(
                self.root / frame[0],
                f"frame {frame[1]:06d} cached for {c.valid.shape[0]} points, scan has {num_points}",
            )
        feats = np.zeros((num_points, self.feature_dim), np.float32)
        feats[c.valid] = c.features
        pred = np.full(num_points, IGNORE_INDEX, np.int64)
        pred[c.valid] = c.pred
        return Guidance(features=feats, valid=c.valid.copy(), pred=pred)
