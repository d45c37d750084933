"""Side-by-side statistics of synthetic and real SemanticKITTI-layout scans.

The synthetic data are only useful if they look like LiDAR data in the ways the methods care
about: point density, range distribution, class balance and camera coverage. This module
measures those on any SemanticKITTI-layout dataset so the two can be compared in one table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kdseg import IGNORE_INDEX
from kdseg.datasets.semantickitti import SemanticKITTI
from kdseg.datasets.semantickitti_labels import CLASS_NAMES, NUM_CLASSES
from kdseg.geometry import project_points

#: range bin edges in metres (3D distance from the sensor)
RANGE_EDGES: tuple[float, ...] = (0.0, 10.0, 20.0, 30.0, 50.0, 80.0, float("inf"))


@dataclass
class ScanStats:
    """Accumulated statistics over a set of scans."""

    scans: int = 0
    points: int = 0
    in_image: int = 0
    range_counts: np.ndarray = field(
        default_factory=lambda: np.zeros(len(RANGE_EDGES) - 1, np.int64)
    )
    class_counts: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES + 1, np.int64))
    """per train id, last entry = ignore"""

    def add(self, points: np.ndarray, labels: np.ndarray, in_image: np.ndarray) -> None:
        """Add a scan: ``points (N, >=3)`` metres, ``labels (N,)`` train ids, ``in_image (N,)``."""
        rng = np.linalg.norm(points[:, :3], axis=1)
        self.scans += 1
        self.points += points.shape[0]
        self.in_image += int(in_image.sum())
        self.range_counts += np.histogram(rng, bins=np.array(RANGE_EDGES))[0]
        lab = np.where(labels == IGNORE_INDEX, NUM_CLASSES, labels)
        self.class_counts += np.bincount(lab, minlength=NUM_CLASSES + 1)

    def rows(self) -> dict[str, float]:
        """Named table rows: points per scan, range shares, class shares, in-image share (%)."""
        n = max(self.points, 1)
        out: dict[str, float] = {"points per scan": self.points / max(self.scans, 1)}
        for k in range(len(RANGE_EDGES) - 1):
            lo, hi = RANGE_EDGES[k], RANGE_EDGES[k + 1]
            name = (
                f"range {lo:.0f}-{hi:.0f} m (%)" if np.isfinite(hi) else f"range > {lo:.0f} m (%)"
            )
            out[name] = 100.0 * self.range_counts[k] / n
        for c, name in enumerate(CLASS_NAMES):
            out[f"class {name} (%)"] = 100.0 * self.class_counts[c] / n
        out["class ignore/unlabeled (%)"] = 100.0 * self.class_counts[NUM_CLASSES] / n
        out["inside camera image (%)"] = 100.0 * self.in_image / n
        return out


def dataset_stats(
    root: str | Path,
    frames: Sequence[tuple[str, int]] | None = None,
    image_size: tuple[int, int] | None = None,
) -> ScanStats:
    """Statistics of ``frames`` (default: all) of the SemanticKITTI-layout dataset at ``root``.

    Args:
        image_size: ``(width, height)`` of ``image_2`` used for the in-image share when the
            dataset has no images (the real samples ship none; KITTI sequence 00 is 1241×376).
    """
    ds = SemanticKITTI(root)
    if frames is None:
        frames = [(s, i) for s in ds.sequences() for i in ds.frame_ids(s)]
    stats = ScanStats()
    for seq, idx in frames:
        frame = ds.frame(seq, idx)
        size = image_size
        img_path = ds.path(seq, "image_2", idx)
        if img_path.is_file():
            from PIL import Image

            with Image.open(img_path) as im:  # reads the header only, not the pixels
                size = im.size
        if size is None:
            raise ValueError(f"{img_path}: no image and no image_size given for the in-image share")
        proj = project_points(frame.points[:, :3], frame.calib.P2, frame.calib.Tr, size)
        assert frame.labels is not None
        stats.add(frame.points, frame.labels, proj.valid)
    return stats


def yaml_class_shares(path: str | Path) -> dict[str, float]:
    """Class rows (%) from semantic-kitti.yaml's ``content`` (shares over the whole dataset)."""
    import yaml

    from kdseg.datasets.semantickitti_labels import RAW_TO_TRAIN_LUT

    content = yaml.safe_load(Path(path).read_text())["content"]
    shares = np.zeros(NUM_CLASSES + 1)
    for raw, frac in content.items():
        train = int(RAW_TO_TRAIN_LUT[int(raw)])
        shares[NUM_CLASSES if train == IGNORE_INDEX else train] += float(frac)
    out = {f"class {name} (%)": 100.0 * shares[c] for c, name in enumerate(CLASS_NAMES)}
    out["class ignore/unlabeled (%)"] = 100.0 * shares[NUM_CLASSES]
    return out


def realism_table(
    columns: dict[str, ScanStats], references: dict[str, dict[str, float]] | None = None
) -> str:
    """A Markdown table: one column per measured dataset, then reference columns (rows that a
    reference does not give show "–"), one row per statistic."""
    names = list(columns)
    rows = {name: st.rows() for name, st in columns.items()}
    refs = references or {}
    keys = list(next(iter(rows.values())))
    heads = [f"{n} ({columns[n].scans} scans)" for n in names] + list(refs)
    lines = ["| statistic | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(heads)]
    for key in keys:
        values = [rows[n][key] for n in names] + [refs[r].get(key) for r in refs]
        cells = [
            "–" if v is None else (f"{v:,.0f}" if key == "points per scan" else f"{v:.2f}")
            for v in values
        ]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
