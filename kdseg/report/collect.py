"""Load ``metrics.json`` files into one tidy :class:`pandas.DataFrame` (one row per run).

Columns: ``variant``, ``method``, ``budget``, ``seed``, ``split_seed`` (the seed of the budget's
split file; equal to ``seed`` for runs that do not record it), ``deployed`` (the evaluated and
deployed network: ``student`` or ``teacher``), ``dataset``, ``scale``, ``miou`` (in %),
``iou/<class>`` (in %, ``nan`` for a class absent from the validation frames; the classes of
the runs' dataset in train-id order, which all runs of a collection share), the inference
parity with Sup-only ``parity/parameters_ratio`` and ``parity/latency_ratio`` (``nan`` when the
run measured none, e.g. Sup-only itself) and ``path``.
The files are run records (:class:`kdseg.record.RunRecord`, read and version-checked there: a
``schema_version`` this kdseg does not read is refused). Every problem with a file raises
:class:`kdseg.errors.DataFormatError` naming that file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from kdseg.datasets.lidar_layouts import class_order
from kdseg.errors import DataFormatError
from kdseg.record import RunRecord

IOU_PREFIX = "iou/"
PARITY_KEYS: tuple[str, ...] = ("parameters_ratio", "latency_ratio")
PARITY_PREFIX = "parity/"


def _parity(path: Path, parity: Any) -> dict[str, float]:
    """The parity ratios of a run (``nan`` when it has no ``parity`` block)."""
    if parity is None:
        return {PARITY_PREFIX + k: math.nan for k in PARITY_KEYS}
    if not isinstance(parity, dict):
        raise DataFormatError(path, "'parity' must be an object")
    out = {}
    for k in PARITY_KEYS:
        v = parity.get(k)
        if isinstance(v, bool) or not isinstance(v, int | float) or not float(v) > 0:
            raise DataFormatError(path, f"parity.{k} must be a positive number, got {v!r}")
        out[PARITY_PREFIX + k] = float(v)
    return out


def _score(path: Path, key: str, value: Any, allow_nan: bool) -> float:
    """A score in [0, 1] as a float; ``None``/``nan`` only where ``allow_nan``."""
    if value is None and allow_nan:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataFormatError(path, f"{key} must be a number, got {value!r}")
    v = float(value)
    if math.isnan(v):
        if allow_nan:
            return v
        raise DataFormatError(path, f"{key} is NaN")
    if not 0.0 <= v <= 1.0:
        raise DataFormatError(path, f"{key} = {v} is outside [0, 1] (scores are fractions)")
    return v


def load_metrics(path: str | Path) -> dict[str, Any]:
    """Read and validate one ``metrics.json``; returns one tidy record (scores in %)."""
    path = Path(path)
    run = RunRecord.read(path)
    cfg, per_class = run.config, run.per_class_iou
    if not per_class:
        raise DataFormatError(path, "per_class_iou lists no class")
    record: dict[str, Any] = {
        "variant": str(cfg["variant"]),
        "method": str(cfg["method"]),
        "budget": str(cfg["budget"]),
        "seed": int(cfg["seed"]),
        "split_seed": int(cfg.get("split_seed", cfg["seed"])),
        "deployed": run.deployed,
        "dataset": str(cfg["dataset"]),
        "scale": str(cfg["scale"]),
        "miou": 100.0 * _score(path, "miou", run.miou, allow_nan=False),
    }
    for c in class_order(list(per_class)):  # the dataset's train-id order
        key = f"per_class_iou.{c}"
        record[IOU_PREFIX + c] = 100.0 * _score(path, key, per_class[c], allow_nan=True)
    record |= _parity(path, run.parity)
    record["path"] = str(path)
    return record


def class_names(runs: pd.DataFrame) -> list[str]:
    """The classes of a :func:`collect_runs` frame, in train-id order."""
    return [c[len(IOU_PREFIX) :] for c in runs.columns if c.startswith(IOU_PREFIX)]


def collect_runs(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Load many ``metrics.json`` files; two files of one (variant, budget, seed) are an error,
    and so are runs whose per-class IoUs name other classes than the first file's."""
    records = [load_metrics(p) for p in paths]
    classes = [k for k in records[0] if k.startswith(IOU_PREFIX)] if records else []
    for rec in records[1:]:
        other = [k for k in rec if k.startswith(IOU_PREFIX)]
        if other != classes:
            raise DataFormatError(
                rec["path"],
                f"per_class_iou has classes {[k[len(IOU_PREFIX) :] for k in other]}, not those "
                f"of {records[0]['path']} {[k[len(IOU_PREFIX) :] for k in classes]}",
            )
    columns = [
        "variant", "method", "budget", "seed", "split_seed", "deployed", "dataset", "scale",
        "miou", *classes, *(PARITY_PREFIX + k for k in PARITY_KEYS), "path",
    ]  # fmt: skip
    df = pd.DataFrame.from_records(records, columns=columns)
    key = ["variant", "budget", "seed", "dataset", "scale"]
    dup = df[df.duplicated(key, keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        same = dup[(dup[key] == first[key]).all(axis=1)]["path"].tolist()
        raise DataFormatError(
            same[-1],
            f"same run (variant={first['variant']}, budget={first['budget']}, "
            f"seed={first['seed']}) as {same[:-1]}",
        )
    return df
