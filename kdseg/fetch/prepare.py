"""The ``prepare`` step: check a dataset's layout with the readers and optionally record it."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from kdseg.io import write_json

from .layouts import check_layout
from .model import Dataset


def prepare(
    ds: Dataset, data_root: str | Path, out: str | Path | None = None, stream: IO[str] | None = None
) -> dict[str, Any]:
    """Check ``<data_root>/<ds.target>`` (raises a one-line ``DataFormatError`` on the first
    problem); write the summary to ``out`` (JSON, atomically) when given; return it."""
    data_root = Path(data_root)
    summary = {
        "dataset": ds.name,
        "root": str((data_root / ds.target).resolve()),
        "layout": check_layout(ds, data_root),
    }
    if out is not None:
        write_json(out, summary)
    counts = ", ".join(f"{k} {v}" for k, v in summary["layout"].items() if k != "check")
    print(f"{ds.name}: layout OK under {summary['root']} ({counts})", file=stream)
    return summary
