"""Per-point 2D teacher features and predictions, and their on-disk cache.

A frame's points are projected with :func:`kdseg.geometry.project_points` (``P2``, ``Tr``; pixel
``(i, j)`` covers ``[i, i+1) × [j, j+1)``). For every valid point (depth > 0, inside the image)
the decoder features are sampled bilinearly at the centre ``floor(uv) + 0.5`` of its pixel and
the class probabilities are read at that pixel; invalid points get zeros / 255.

Cache layout (``out_dir``)::

    <sequence>/<index:06d>.npz   valid (N,) bool; features (M, C) float16 and probs (M, K)
                                 float16 and pred (M,) uint8 for the M valid points, in point
                                 order; num_points (); teacher_sha256 ()
    manifest.json                written last: teacher hash + options, frames, format
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kdseg import IGNORE_INDEX
from kdseg.datasets.semantickitti import Calibration, SemanticKITTI
from kdseg.datasets.splits import split_frames
from kdseg.errors import DataFormatError
from kdseg.geometry import project_points
from kdseg.io import atomic_open, write_json

from .model import FEATURE_STRIDE, Teacher2D, load_teacher, pad_to_stride

MANIFEST = "manifest.json"
CACHE_FORMAT = "kdseg.teacher2d.point_features"
CACHE_VERSION = 1


@dataclass(frozen=True)
class PointFeatures:
    """2D guidance of the ``N`` points of one frame.

    Attributes:
        features: ``(N, C)`` float32 decoder features (zeros where not ``valid``).
        probs: ``(N, K)`` float32 class probabilities (zeros where not ``valid``).
        pred: ``(N,)`` int64 argmax class (255 where not ``valid``).
        valid: ``(N,)`` bool, the point projects in front of the camera and inside the image.
    """

    features: np.ndarray
    probs: np.ndarray
    pred: np.ndarray
    valid: np.ndarray


def sample_features(
    features: torch.Tensor, uv: torch.Tensor, image_size: tuple[int, int]
) -> torch.Tensor:
    """Bilinearly sample a feature map at image coordinates.

    Args:
        features: ``(C, h, w)`` map covering the whole ``(W, H)`` image (feature pixel ``k``
            covers image columns ``[k·W/w, (k+1)·W/w)``).
        uv: ``(N, 2)`` continuous image coordinates (column, row) in pixels, pixel ``i``
            covering ``[i, i+1)``; the centre of pixel ``i`` is ``i + 0.5``.
        image_size: ``(W, H)`` of the image, pixels.
    Returns:
        ``(N, C)`` features. With ``align_corners=False`` the normalised coordinate
        ``2u/W − 1`` puts feature pixel ``k``'s centre at image coordinate ``(k + 0.5)·W/w``;
        outside the outermost centres the border value is used.
    """
    width, height = image_size
    uv = uv.to(features.dtype)
    grid = torch.stack([2.0 * uv[:, 0] / width - 1.0, 2.0 * uv[:, 1] / height - 1.0], dim=-1)
    out = F.grid_sample(
        features[None],
        grid[None, None],
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )  # (1, C, 1, N)
    return out[0, :, 0].T


@torch.no_grad()
def point_features(
    teacher: Teacher2D, image: np.ndarray, points: np.ndarray, calib: Calibration
) -> PointFeatures:
    """The teacher's features and probabilities for ``points`` ``(N, ≥3)`` (LiDAR frame, metres)
    seen in ``image`` ``(H, W, 3)`` uint8 (``image_2``)."""
    h, w = image.shape[:2]
    proj = project_points(points[:, :3], calib.P2, calib.Tr, (w, h))
    n, valid = points.shape[0], proj.valid
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    x = pad_to_stride(x)
    out = teacher.model(x)
    feat_map, logits = out["features"][0], out["logits"][0]  # (C, Hp/4, Wp/4), (K, Hp, Wp)
    hp, wp = x.shape[-2:]
    if feat_map.shape[-2:] != (hp // FEATURE_STRIDE, wp // FEATURE_STRIDE):
        raise ValueError(f"feature map {tuple(feat_map.shape)} is not at 1/{FEATURE_STRIDE}")
    pix = np.floor(proj.uv[valid]).astype(np.int64)  # (M, 2) column, row
    centres = torch.from_numpy(pix + 0.5)
    feats = sample_features(feat_map, centres, (wp, hp)).numpy()
    probs = logits[:, pix[:, 1], pix[:, 0]].T.softmax(dim=1).numpy()  # (M, K)
    full_f = np.zeros((n, feats.shape[1]), np.float32)
    full_p = np.zeros((n, probs.shape[1]), np.float32)
    pred = np.full(n, IGNORE_INDEX, np.int64)
    full_f[valid], full_p[valid] = feats, probs
    pred[valid] = probs.argmax(axis=1)
    return PointFeatures(features=full_f, probs=full_p, pred=pred, valid=valid.copy())


def cache_path(out_dir: str | Path, sequence: str, index: int) -> Path:
    """``<out_dir>/<sequence>/<index:06d>.npz``."""
    return Path(out_dir) / sequence / f"{index:06d}.npz"


def save_point_features(path: str | Path, pf: PointFeatures, teacher_sha256: str) -> None:
    """Atomically write one frame's cache file (valid rows only, float16)."""
    v = pf.valid
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(
            fh,
            valid=v,
            features=pf.features[v].astype(np.float16),
            probs=pf.probs[v].astype(np.float16),
            pred=pf.pred[v].astype(np.uint8),
            num_points=np.int64(v.shape[0]),
            teacher_sha256=np.str_(teacher_sha256),
        )


def _stored_teacher(path: Path) -> str | None:
    try:
        with np.load(path) as z:
            return str(z["teacher_sha256"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def load_point_features(
    out_dir: str | Path,
    sequence: str,
    index: int,
    num_points: int,
    teacher_sha256: str | None = None,
) -> PointFeatures:
    """Read a frame's cache (features/probs as float32, zeros for invalid points).

    Raises:
        DataFormatError: naming the file if it is missing or corrupt, its point count is not
            ``num_points``, or (when given) it was written by another teacher.
    """
    path = cache_path(out_dir, sequence, index)
    if not path.is_file():
        raise DataFormatError(path, "2D feature cache file does not exist (run cache_features)")
    try:
        with np.load(path) as z:
            data = {
                k: z[k]
                for k in ("valid", "features", "probs", "pred", "num_points", "teacher_sha256")
            }
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFormatError(path, f"corrupt 2D feature cache file: {exc}") from None
    valid = data["valid"].astype(bool)
    if int(data["num_points"]) != num_points or valid.shape[0] != num_points:
        raise DataFormatError(
            path, f"cached for {int(data['num_points'])} points but the scan has {num_points}"
        )
    m = int(valid.sum())
    if not data["features"].shape[0] == data["probs"].shape[0] == data["pred"].shape[0] == m:
        raise DataFormatError(path, f"row counts do not match the {m} valid points")
    if teacher_sha256 is not None and str(data["teacher_sha256"]) != teacher_sha256:
        raise DataFormatError(path, "written by another 2D teacher (stale cache)")
    feats = np.zeros((num_points, data["features"].shape[1]), np.float32)
    probs = np.zeros((num_points, data["probs"].shape[1]), np.float32)
    pred = np.full(num_points, IGNORE_INDEX, np.int64)
    feats[valid] = data["features"]
    probs[valid] = data["probs"]
    pred[valid] = data["pred"]
    return PointFeatures(features=feats, probs=probs, pred=pred, valid=valid)


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    """The cache's manifest, or ``None`` if absent (an incomplete or never-built cache)."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"malformed cache manifest: {exc}") from None


def _frame_key(sequence: str, index: int) -> str:
    return f"{sequence}/{index:06d}"


def cache_features(
    dataset_root: str | Path,
    teacher: Teacher2D | str | Path,
    out_dir: str | Path,
    frames: Iterable[tuple[str, int]] | None = None,
) -> dict[str, Any]:
    """Compute and cache the per-point 2D features of ``frames`` (idempotent, shared).

    Args:
        teacher: a loaded :class:`Teacher2D` or the path of a teacher checkpoint.
        frames: ``(sequence, index)`` pairs; default every train and val frame.
    Returns:
        ``{"manifest": path, "written": n, "reused": m}``. Nothing is recomputed when the
        manifest names the same teacher (SHA-256 and options) and covers ``frames``. Otherwise
        the manifest is removed first, frame files already written by this teacher (an
        interrupted run) are kept, the others are (re)written, and the manifest is written last.
    """
    if not isinstance(teacher, Teacher2D):
        teacher = load_teacher(teacher)
    out_dir = Path(out_dir)
    if frames is None:
        frames = split_frames(dataset_root, "train") + split_frames(dataset_root, "val")
    wanted = sorted({(s, int(i)) for s, i in frames})
    identity = {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "teacher_sha256": teacher.fingerprint,
        "teacher_options": teacher.options,
        "arch": teacher.arch,
        "feature_dim": teacher.feature_dim,
        "num_classes": teacher.num_classes,
        "sample_at": "pixel_centre",
        "dtype": "float16",
    }
    manifest = read_manifest(out_dir)
    prev: set[str] = set()
    if manifest is not None and all(manifest.get(k) == v for k, v in identity.items()):
        prev = set(manifest.get("frames", []))
        have = all(cache_path(out_dir, s, i).is_file() for s, i in wanted)
        if have and {_frame_key(s, i) for s, i in wanted} <= prev:
            return {"manifest": out_dir / MANIFEST, "written": 0, "reused": len(wanted)}
    if manifest is not None:
        (out_dir / MANIFEST).unlink()
    ds = SemanticKITTI(dataset_root)
    written = reused = 0
    for seq, idx in wanted:
        path = cache_path(out_dir, seq, idx)
        if path.is_file() and _stored_teacher(path) == teacher.fingerprint:
            reused += 1
            continue
        frame = ds.frame(seq, idx, with_image=True, with_labels=False)
        pf = point_features(teacher, frame.image, frame.points, frame.calib)
        save_point_features(path, pf, teacher.fingerprint)
        written += 1
    keys = sorted(prev | {_frame_key(s, i) for s, i in wanted})
    write_json(out_dir / MANIFEST, {**identity, "frames": keys})
    return {"manifest": out_dir / MANIFEST, "written": written, "reused": reused}
