"""Which sequences of a SemanticKITTI-layout dataset are for training and which for validation.

Real SemanticKITTI: train = 00-07, 09, 10; valid = 08; test = 11-21 (no labels).
The embedded synthetic datasets record their own lists in ``meta.json`` (``train_sequences``,
``val_sequences``), written last by the generator, so its presence also marks a complete dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

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
