"""Which sequences of a SemanticKITTI-layout dataset are for training and which for validation.

Real SemanticKITTI: train = 00-07, 09, 10; valid = 08; test = 11-21 (no labels).
The embedded synthetic datasets record their own lists in ``meta.json`` (``train_sequences``,
``val_sequences``), written last by the generator, so its presence also marks a complete dataset.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from kdseg.budgets import Split, make_split
from kdseg.errors import DataFormatError

from .semantickitti import SemanticKITTI

OFFICIAL_SPLIT: dict[str, tuple[str, ...]] = {
    "train": ("00", "01", "02", "03", "04", "05", "06", "07", "09", "10"),
    "val": ("08",),
    "test": tuple(f"{i:02d}" for i in range(11, 22)),
}


def sequence_split(root: str | Path) -> dict[str, tuple[str, ...]]:
    """``{"train": (...), "val": (...)}`` for the dataset at ``root``, restricted to what exists."""
    root = Path(root)
    meta = root / "meta.json"
    if meta.is_file():
        try:
            obj = json.loads(meta.read_text())
            split = {"train": tuple(obj["train_sequences"]), "val": tuple(obj["val_sequences"])}
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataFormatError(meta, f"malformed dataset metadata: {exc!r}") from None
    else:
        split = {k: OFFICIAL_SPLIT[k] for k in ("train", "val")}
    present = set(SemanticKITTI(root).sequences())
    out = {k: tuple(s for s in v if s in present) for k, v in split.items()}
    if not out["train"]:
        raise DataFormatError(
            root, f"no training sequence present (expected some of {split['train']})"
        )
    return out


def split_frames(root: str | Path, part: str) -> list[tuple[str, int]]:
    """All ``(sequence, index)`` frames of ``part`` ("train" or "val"), sorted."""
    ds = SemanticKITTI(root)
    seqs = sequence_split(root)[part]
    return [(s, i) for s in seqs for i in ds.frame_ids(s)]


def validation_frames(root: str | Path) -> list[tuple[str, int]]:
    """The validation frames of ``root``; :class:`DataFormatError` when there are none (a run
    could train but never be scored)."""
    parts = sequence_split(root)
    frames = split_frames(root, "val")
    if not frames:
        expected = _expected_sequences(root, "val")
        raise DataFormatError(
            SemanticKITTI(root).sequences_dir,
            f"no validation scans (validation sequences {expected}, present: "
            f"{list(parts['val'])}); a run could not be scored",
        )
    return frames


def _expected_sequences(root: str | Path, part: str) -> list[str]:
    meta = Path(root) / "meta.json"
    if meta.is_file():
        return list(json.loads(meta.read_text()).get(f"{part}_sequences", []))
    return list(OFFICIAL_SPLIT[part])


def training_fingerprint(root: str | Path) -> str:
    """Digest (16 hex digits) of the training scans of ``root``: names and file sizes.

    Recorded in a split file when it is drawn and compared before training, so a split made for
    another dataset (or another version of it) is refused rather than trained on.
    """
    return _fingerprint(SemanticKITTI(root), split_frames(root, "train"))


def _fingerprint(ds: SemanticKITTI, frames: list[tuple[str, int]]) -> str:
    digest = hashlib.sha256()
    for seq, idx in frames:
        size = ds.path(seq, "velodyne", idx).stat().st_size
        digest.update(f"{seq}/{idx:06d} {size}\n".encode())
    return digest.hexdigest()[:16]


def draw_split(root: str | Path, dataset: str, budget: str, seed: int) -> Split:
    """The budget split of the training scans of ``root``, with their fingerprint recorded."""
    frames = split_frames(root, "train")
    return make_split(dataset, frames, budget, seed, fingerprint=training_fingerprint(root))


def check_split(
    split: Split, path: str | Path, root: str | Path, dataset: str | None = None
) -> None:
    """Check a split read from ``path`` against the dataset at ``root`` before training.

    Refused (:class:`DataFormatError` naming the split file or the missing file): a split made
    for another dataset name than ``dataset`` (when given) or for other training scans
    (fingerprint), a listed scan that does not exist or lies outside the training sequences
    (a validation scan would leak into training), a training scan the split leaves out, and a
    labelled scan without the label file its supervision reads. The split's seed may differ
    from the run's (one fixed split serves every seed).
    """
    path, ds = Path(path), SemanticKITTI(root)
    if dataset is not None and split.dataset != dataset:
        raise DataFormatError(
            path, f"was made for dataset {split.dataset!r}, not {dataset!r} (--dataset)"
        )
    parts = sequence_split(root)
    frames = split_frames(root, "train")
    train = set(frames)
    fingerprint = _fingerprint(ds, frames)
    other = (
        ""
        if split.fingerprint == fingerprint
        else f"; it was drawn from other training scans (fingerprint {split.fingerprint or 'none'}"
        f", the data at {root} give {fingerprint}): regenerate it with `kdseg split`"
    )
    for kind, listed in (("labelled", split.labelled), ("unlabelled", split.unlabelled)):
        for seq, idx in listed:
            if (seq, idx) in train:
                continue
            where = f"{kind} scan {seq}/{idx:06d}"
            if seq in parts["val"]:
                problem = f"{where} is in validation sequence {seq} (training on it would leak)"
            elif seq not in parts["train"]:
                problem = f"{where} is not in a training sequence {list(parts['train'])}"
            else:
                problem = f"{where}: {ds.path(seq, 'velodyne', idx)} does not exist"
            raise DataFormatError(path, problem + other)
    if other:
        raise DataFormatError(path, other[2:].replace("it was", "was", 1))
    missing = sorted(train - set(split.labelled) - set(split.unlabelled))
    if missing:
        seq, idx = missing[0]
        raise DataFormatError(
            path, f"leaves out {len(missing)} training scans (first {seq}/{idx:06d})"
        )
    kind = "scribbles" if split.supervision == "scribbles" else "labels"
    for seq, idx in split.labelled:
        label = ds.path(seq, kind, idx)
        if not label.is_file():
            raise DataFormatError(label, f"{kind} file of a labelled scan of {path} is missing")


def check_dataset(root: str | Path) -> dict[str, object]:
    """Check a SemanticKITTI-layout root before any job uses it; return its record.

    Every training and validation scan: a ``.bin`` of a positive multiple of 16 bytes, a
    ``labels/`` file of 4 bytes per point of its scan, a ``scribbles/`` file of the same size
    where one exists, a pose per scan; at least one validation scan; and one whole frame per
    sequence read (calibration, label ids, finite coordinates). The first problem raises
    :class:`DataFormatError` naming the file.
    """
    ds = SemanticKITTI(root)
    parts = sequence_split(root)
    validation_frames(root)
    frames: dict[str, int] = {}
    scribbles: dict[str, int] = {}
    for seq in [*parts["train"], *parts["val"]]:
        ids = ds.frame_ids(seq)
        if not ids:
            raise DataFormatError(ds.seq_dir(seq) / "velodyne", "no scans")
        scribbles[seq] = 0
        for idx in ids:
            points = _scan_points(ds.path(seq, "velodyne", idx))
            _check_label_size(ds.path(seq, "labels", idx), points)
            scribble = ds.path(seq, "scribbles", idx)
            if scribble.is_file():
                _check_label_size(scribble, points)
                scribbles[seq] += 1
        poses = ds.lidar_poses(seq).shape[0]
        if poses <= ids[-1]:
            raise DataFormatError(
                ds.seq_dir(seq) / "poses.txt", f"has {poses} poses but scan {ids[-1]} exists"
            )
        ds.frame(seq, ids[0])  # reads scan, labels, calib and poses: fails loudly if broken
        frames[seq] = len(ids)
    return {
        "root": str(Path(root).resolve()),
        "split": {k: list(v) for k, v in parts.items()},
        "frames": frames,
        "scribbles": {k: v for k, v in scribbles.items() if v},
        "train_fingerprint": training_fingerprint(root),
    }


def _scan_points(path: Path) -> int:
    """Number of points of a velodyne scan, from its size (checked, not read)."""
    if not path.is_file():
        raise DataFormatError(path, "scan file does not exist")
    size = path.stat().st_size
    if size == 0 or size % 16:
        raise DataFormatError(
            path, f"size {size} bytes is not a positive multiple of 16 (4 float32 per point)"
        )
    return size // 16


def _check_label_size(path: Path, points: int) -> None:
    if not path.is_file():
        raise DataFormatError(path, "label file does not exist")
    size = path.stat().st_size
    if size != 4 * points:
        raise DataFormatError(
            path, f"size {size} bytes, but its scan has {points} points (4 bytes per point)"
        )
