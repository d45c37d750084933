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
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

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
SPLIT_FORMAT_VERSION = 1
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

    @property
    def num_frames(self) -> int:
        return len(self.labelled) + len(self.unlabelled)


def make_split(dataset: str, frames: Sequence[FrameId], budget: str, seed: int) -> Split:
    """Build the split of ``frames`` (any order; they are sorted first) for ``budget``."""
    b = parse_budget(budget)
    ordered = sorted({(str(s), int(i)) for s, i in frames})
    if len(ordered) != len(frames):
        raise ValueError(f"dataset {dataset!r}: duplicate training frames")
    if not ordered:
        raise ValueError(f"dataset {dataset!r}: no training frames")
    if b.kind in ("full", "scribbles"):
        labelled, unlabelled = ordered, []
    else:
        k = max(1, round(b.percent / 100.0 * len(ordered)))
        perm = np.random.default_rng(seed).permutation(len(ordered))
        chosen = set(perm[:k].tolist())
        labelled = [f for j, f in enumerate(ordered) if j in chosen]
        unlabelled = [f for j, f in enumerate(ordered) if j not in chosen]
    return Split(dataset, b.name, int(seed), b.supervision, tuple(labelled), tuple(unlabelled))


def write_split(path: str | Path, split: Split) -> None:
    """Write ``split`` as JSON, atomically."""
    obj = asdict(split)
    obj["labelled"] = [list(f) for f in split.labelled]
    obj["unlabelled"] = [list(f) for f in split.unlabelled]
    obj["format_version"] = SPLIT_FORMAT_VERSION
    obj["counts"] = {"labelled": len(split.labelled), "unlabelled": len(split.unlabelled)}
    write_json(path, obj)


def read_split(path: str | Path) -> Split:
    """Read and validate a split file written by :func:`write_split`."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "split file does not exist (run the split rule first)")
    try:
        obj = json.loads(path.read_text())
        if obj.get("format_version") != SPLIT_FORMAT_VERSION:
            raise DataFormatError(path, f"unsupported split format {obj.get('format_version')!r}")
        parse_budget(obj["budget"])
        split = Split(
            dataset=str(obj["dataset"]),
            budget=str(obj["budget"]),
            seed=int(obj["seed"]),
            supervision=str(obj["supervision"]),
            labelled=tuple((str(s), int(i)) for s, i in obj["labelled"]),
            unlabelled=tuple((str(s), int(i)) for s, i in obj["unlabelled"]),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(path, f"malformed split file: {exc!r}") from None
    if set(split.labelled) & set(split.unlabelled):
        raise DataFormatError(path, "labelled and unlabelled frames overlap")
    return split
