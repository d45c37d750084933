"""Writing the synthetic street dataset in the SemanticKITTI layout (public :func:`generate`)."""

from __future__ import annotations

import json
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from kdseg.datasets.semantickitti import (
    write_calib,
    write_label,
    write_points,
    write_poses,
    write_times,
)
from kdseg.datasets.semantickitti_labels import NUM_CLASSES, RAW_TO_TRAIN_LUT
from kdseg.errors import DataFormatError
from kdseg.geometry import project_points
from kdseg.io import write_json, write_png

from .config import GENERATOR_VERSION, StreetConfig
from .frames import SOURCE_VIEWS_PER_SCENE, SequenceSimulator, source_views

_FRAME_FILE = re.compile(r"^(\d{6})\.(bin|label|png)$")
_FRAME_DIRS = ("velodyne", "labels", "scribbles", "image_2", "labels_2")


def _remove_stale(seq_dir: Path, n_frames: int) -> None:
    """Delete frame files numbered ``>= n_frames`` left by an earlier, larger, unfinished run."""
    for sub in _FRAME_DIRS:
        folder = seq_dir / sub
        if folder.is_dir():
            for path in folder.iterdir():
                m = _FRAME_FILE.match(path.name)
                if m and int(m.group(1)) >= n_frames:
                    path.unlink()


def _class_counts(raw: np.ndarray) -> np.ndarray:
    """``(NUM_CLASSES + 1,)`` point counts per train id (last bin: ignore)."""
    train = RAW_TO_TRAIN_LUT[raw.astype(np.int64)]
    return np.bincount(np.where(train == 255, NUM_CLASSES, train), minlength=NUM_CLASSES + 1)


def generate_sequence(
    out_root: Path, cfg: StreetConfig, sequence: str, n_frames: int
) -> dict[str, Any]:
    """Write sequence ``sequence`` (``n_frames`` scans) under ``out_root/dataset/sequences``.

    Returns statistics: points per scan, in-image and scribbled fractions, class counts.
    """
    seq_dir = Path(out_root) / "dataset" / "sequences" / sequence
    _remove_stale(seq_dir, n_frames)
    sim = SequenceSimulator(cfg, sequence, n_frames)
    write_calib(seq_dir / "calib.txt", sim.calib)
    points_per_scan, in_image = [], 0
    counts = np.zeros(NUM_CLASSES + 1, np.int64)
    scribbled = np.zeros(NUM_CLASSES + 1, np.int64)
    for i in range(n_frames):
        fr = sim.frame(i)
        name = f"{i:06d}"
        write_points(seq_dir / "velodyne" / f"{name}.bin", fr.points)
        write_label(seq_dir / "labels" / f"{name}.label", fr.raw, fr.instance)
        write_label(seq_dir / "scribbles" / f"{name}.label", fr.scribble_raw, fr.scribble_instance)
        write_png(seq_dir / "image_2" / f"{name}.png", fr.image)
        write_png(seq_dir / "labels_2" / f"{name}.png", fr.labels_2)
        proj = project_points(
            fr.points[:, :3], sim.calib.P2, sim.calib.Tr, (cfg.image_width, cfg.image_height)
        )
        points_per_scan.append(int(fr.points.shape[0]))
        in_image += int(proj.valid.sum())
        counts += _class_counts(fr.raw)
        scribbled += _class_counts(fr.raw[fr.scribble_raw > 0])
    write_poses(seq_dir / "poses.txt", sim.camera_poses())
    write_times(seq_dir / "times.txt", sim.times)
    total = max(sum(points_per_scan), 1)
    return {
        "frames": n_frames,
        "points_per_scan": points_per_scan,
        "in_image_fraction": in_image / total,
        "scribble_fraction": float(scribbled[:NUM_CLASSES].sum()) / total,
        "class_points": counts.tolist(),
        "class_scribbled": scribbled.tolist(),
    }


def generate_sources(out_root: Path, cfg: StreetConfig, chunk: int) -> int:
    """Write source images ``chunk * SOURCE_VIEWS_PER_SCENE ...`` of one source scene."""
    first = chunk * SOURCE_VIEWS_PER_SCENE
    count = min(SOURCE_VIEWS_PER_SCENE, cfg.source_images - first)
    for j, (image, labels) in enumerate(source_views(cfg, chunk, count)):
        write_png(Path(out_root) / "source" / "images" / f"{first + j:06d}.png", image)
        write_png(Path(out_root) / "source" / "labels" / f"{first + j:06d}.png", labels)
    return count


def _job(kind: str, out_root: Path, cfg: StreetConfig, arg: Any) -> Any:
    if kind == "sequence":
        return generate_sequence(out_root, cfg, *arg)
    return generate_sources(out_root, cfg, arg)


def _summary(stats: dict[str, dict[str, Any]]) -> dict[str, Any]:
    pts = [n for s in stats.values() for n in s["points_per_scan"]]
    total = max(sum(pts), 1)
    counts = np.sum([s["class_points"] for s in stats.values()], axis=0)
    scr = np.sum([s["class_scribbled"] for s in stats.values()], axis=0)
    return {
        "mean_points_per_scan": float(np.mean(pts)),
        "in_image_fraction": sum(
            s["in_image_fraction"] * sum(s["points_per_scan"]) for s in stats.values()
        )
        / total,
        "scribble_fraction": sum(
            s["scribble_fraction"] * sum(s["points_per_scan"]) for s in stats.values()
        )
        / total,
        "ignore_fraction": float(counts[-1]) / total,
        "class_points": counts.tolist(),
        "class_scribble_fraction": (scr / np.maximum(counts, 1)).round(4).tolist(),
    }


def generate(out_root: Path, cfg: StreetConfig, workers: int = 1) -> Path:
    """Generate every sequence, the source images and ``meta.json`` (written last, atomically).

    Returns ``out_root`` at once when its ``meta.json`` already records the same config and
    generator version; a ``meta.json`` of another config is an error (nothing is overwritten).
    Sequences and source scenes run in a process pool when ``workers > 1``.
    """
    out_root = Path(out_root)
    meta_path = out_root / "meta.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataFormatError(meta_path, f"unreadable meta.json: {exc}") from None
        same = meta.get("config") == cfg.to_dict()
        if same and meta.get("generator_version") == GENERATOR_VERSION:
            return out_root
        raise DataFormatError(
            meta_path,
            "holds a dataset of another config or generator "
            "version; generate into another folder or delete this one",
        )
    jobs: list[tuple[str, Any]] = [("sequence", seq) for seq in cfg.sequences()]
    n_chunks = -(-cfg.source_images // SOURCE_VIEWS_PER_SCENE)
    jobs += [("source", k) for k in range(n_chunks)]
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(_job, kind, out_root, cfg, arg) for kind, arg in jobs]
            results = [f.result() for f in futures]
    else:
        results = [_job(kind, out_root, cfg, arg) for kind, arg in jobs]
    stats = {
        seq[0]: res for (kind, seq), res in zip(jobs, results, strict=True) if kind == "sequence"
    }
    meta = {
        "generator": "kdseg.datasets.synthetic_street",
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        "train_sequences": list(cfg.train_sequences),
        "val_sequences": list(cfg.val_sequences),
        "frames": {name: n for name, n in cfg.sequences()},
        "source_images": cfg.source_images,
        "stats": _summary(stats),
        "sequence_stats": {
            k: {kk: v for kk, v in s.items() if kk != "points_per_scan"} for k, s in stats.items()
        },
    }
    write_json(meta_path, meta)
    return out_root
