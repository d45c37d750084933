"""Label budgets: which training frames (and which points) carry labels.

A budget is data: :func:`make_split` turns the sorted list of training frames into a
:class:`Split`, which is written to a JSON file that the workflow tracks and training reads.
The same module serves real and synthetic data.

Budgets:

* ``full``: every training scan, dense labels.
* ``scribbles``: every training scan, ScribbleKITTI-style scribbles (``scribbles/`` files)
  decide which points are labelled (about 8 % of the points).
* ``scans-P`` (0 < P <= 100; LaserMix uses 1, 10, 20, 50): ``max(1, round(P/100 · N))``
  scans sampled uniformly without replacement with the split seed carry dense labels; the rest
  are unlabelled. For one seed the splits are nested (the 1 % scans are among the 10 % scans):
  one permutation per seed, cut at different lengths, so budget curves compare like with like.

The documented budgets are :data:`STANDARD_BUDGETS` (those of the published tables). Any other
``scans-P`` is allowed, written in its shortest form (``scans-7``, ``scans-0.5``; ``scans-07``
and ``scans-10.0`` are refused with the right spelling), and recorded as a custom budget
(``custom_budget: true`` in the split file; ``kdseg split`` says so).

A split file (format :data:`SPLIT_FORMAT_VERSION`) records the dataset name and
``train_fingerprint``, a digest of the dataset's training scans (names and sizes) when the split
was drawn; ``kdseg train`` compares both with the data it is given before training
(:func:`kdseg.datasets.splits.check_split`). Files of format 1 lack them and are refused with the
command that regenerates them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kdseg.errors import ConfigError, DataFormatError
from kdseg.io import write_json

FrameId = tuple[str, int]
"""(sequence name, scan index)"""

STANDARD_BUDGETS: tuple[str, ...] = (
    "scribbles",
    "scans-1",
    "scans-10",
    "scans-20",
    "scans-50",
    "full",
)
SPLIT_FORMAT_VERSION = 2
_SCANS = re.compile(r"^scans-(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Budget:
    """A parsed budget name. ``percent`` is the share of labelled scans (100 for full/scribbles)."""

    name: str
    kind: str  # "full" | "scribbles" | "scans"
    percent: float

    @property
    def supervision(self) -> str:
        """Which label files decide the labelled points: ``"labels"`` or ``"scribbles"``."""
        return "scribbles" if self.kind == "scribbles" else "labels"


def parse_budget(name: str) -> Budget:
    """Parse ``full``, ``scribbles`` or ``scans-P``; anything else is a :class:`ConfigError`."""
    if name in ("full", "scribbles"):
        return Budget(name=name, kind=name, percent=100.0)
    m = _SCANS.match(name)
    if m:
        pct = float(m.group(1))
        if 0 < pct <= 100:
            canonical = f"scans-{pct:g}"
            if name != canonical:
                raise ConfigError("budget", f"{name!r} is written {canonical!r}")
            return Budget(name=name, kind="scans", percent=pct)
    raise ConfigError(
        "budget",
        f"{name!r} is not a budget; use 'full', 'scribbles' or 'scans-P' with 0 < P <= 100",
    )


@dataclass(frozen=True)
class Split:
    """Labelled and unlabelled training frames of one (dataset, budget, seed)."""

    dataset: str
    budget: str
    seed: int
    supervision: str
    labelled: tuple[FrameId, ...]
    unlabelled: tuple[FrameId, ...]
    fingerprint: str = ""
    """digest of the dataset's training scans the split was drawn from (``train_fingerprint``)"""

    @property
    def num_frames(self) -> int:
        return len(self.labelled) + len(self.unlabelled)

    @property
    def custom_budget(self) -> bool:
        """Whether the budget is not one of the documented :data:`STANDARD_BUDGETS`."""
        return self.budget not in STANDARD_BUDGETS


def make_split(
    dataset: str, frames: Sequence[FrameId], budget: str, seed: int, fingerprint: str = ""
) -> Split:
    """Build the split of ``frames`` (any order; they are sorted first) for ``budget``.

    ``fingerprint``: digest of the training scans ``frames`` come from
    (:func:`kdseg.datasets.splits.training_fingerprint`), recorded in the split.
    """
    b = parse_budget(budget)
    if not 0 <= int(seed) < 2**32:
        raise ConfigError("seed", f"must be in [0, 2**32), got {seed}")
    ordered = sorted({(str(s), int(i)) for s, i in frames})
    if len(ordered) != len(frames):
        raise ConfigError("frames", f"dataset {dataset!r}: duplicate training frames")
    if not ordered:
        raise ConfigError("frames", f"dataset {dataset!r}: no training frames")
    if b.kind in ("full", "scribbles"):
        labelled, unlabelled = ordered, []
    else:
        k = max(1, round(b.percent / 100.0 * len(ordered)))
        perm = np.random.default_rng(seed).permutation(len(ordered))
        chosen = set(perm[:k].tolist())
        labelled = [f for j, f in enumerate(ordered) if j in chosen]
        unlabelled = [f for j, f in enumerate(ordered) if j not in chosen]
    return Split(
        dataset,
        b.name,
        int(seed),
        b.supervision,
        tuple(labelled),
        tuple(unlabelled),
        fingerprint,
    )


def labelled_count(budget: str, num_frames: int) -> int:
    """How many of ``num_frames`` training scans carry labels under ``budget``."""
    b = parse_budget(budget)
    if b.kind != "scans":
        return num_frames
    return max(1, round(b.percent / 100.0 * num_frames))


def write_split(path: str | Path, split: Split) -> None:
    """Write ``split`` as JSON, atomically."""
    obj = asdict(split)
    obj["labelled"] = [list(f) for f in split.labelled]
    obj["unlabelled"] = [list(f) for f in split.unlabelled]
    obj["train_fingerprint"] = obj.pop("fingerprint")
    obj["custom_budget"] = split.custom_budget
    obj["format_version"] = SPLIT_FORMAT_VERSION
    obj["counts"] = {"labelled": len(split.labelled), "unlabelled": len(split.unlabelled)}
    write_json(path, obj)


def read_split(path: str | Path) -> Split:
    """Read a split file written by :func:`write_split` and check it on its own (the checks
    against a dataset are :func:`kdseg.datasets.splits.check_split`'s)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "split file does not exist (run the split rule first)")
    try:
        obj = json.loads(path.read_text())
        if not isinstance(obj, dict):
            raise TypeError(f"expected a JSON object, found {type(obj).__name__}")
        version = obj.get("format_version")
        if version != SPLIT_FORMAT_VERSION:
            raise DataFormatError(path, _old_format(version, obj, path))
        split = Split(
            dataset=str(obj["dataset"]),
            budget=str(obj["budget"]),
            seed=int(obj["seed"]),
            supervision=str(obj["supervision"]),
            labelled=tuple((str(s), int(i)) for s, i in obj["labelled"]),
            unlabelled=tuple((str(s), int(i)) for s, i in obj["unlabelled"]),
            fingerprint=str(obj["train_fingerprint"]),
        )
        budget = parse_budget(split.budget)
    except ConfigError as exc:
        raise DataFormatError(path, f"budget {exc.problem}") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(path, f"malformed split file: {exc!r}") from None
    if split.supervision != budget.supervision:
        raise DataFormatError(
            path, f"supervision {split.supervision!r} does not match budget {split.budget!r}"
        )
    if obj.get("custom_budget") is not split.custom_budget:
        raise DataFormatError(
            path, f"custom_budget is {obj.get('custom_budget')!r} for budget {split.budget!r}"
        )
    if set(split.labelled) & set(split.unlabelled):
        raise DataFormatError(path, "labelled and unlabelled frames overlap")
    expected = labelled_count(split.budget, split.num_frames)
    if len(split.labelled) != expected:
        raise DataFormatError(
            path,
            f"{len(split.labelled)} labelled scans, but budget {split.budget!r} of "
            f"{split.num_frames} scans labels {expected}",
        )
    return split


def _old_format(version: Any, obj: dict[str, Any], path: Path) -> str:
    """The refusal of a split file of another format, with the command that regenerates it."""
    words = [f"--{k} {obj[k]}" for k in ("dataset", "budget", "seed") if k in obj]
    return (
        f"split format {version!r} is not the supported {SPLIT_FORMAT_VERSION} (format 2 records "
        "the dataset fingerprint that training checks); regenerate it with "
        f"`kdseg split --data DATA_ROOT {' '.join(words)} --out {path}` "
        "(in the workflow: delete the file and rerun)"
    )
