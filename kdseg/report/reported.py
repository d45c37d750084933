"""Published numbers (``reported_numbers.csv``) matched to the rows and columns of a study."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kdseg.budgets import parse_budget
from kdseg.errors import DataFormatError
from kdseg.report.study import StudyDef

log = logging.getLogger(__name__)

CSV_COLUMNS: tuple[str, ...] = (
    "setting", "dataset", "budget_or_task", "backbone", "method", "metric", "value", "source",
)  # fmt: skip


@dataclass
class ReportedRow:
    """One reported row: ``values`` maps budget -> (value in %, source)."""

    label: str
    variant: str
    method: str
    backbone: str
    values: dict[str, tuple[float, str]] = field(default_factory=dict)


def csv_budget_name(budget: str) -> str:
    """The CSV ``budget_or_task`` of a kdseg budget (``scans-10`` -> ``scans 10%``)."""
    b = parse_budget(budget)
    if b.kind == "scribbles":
        return "scribbles (8.06% points)"
    if b.kind == "full":
        return "scans 100%"
    pct = f"{b.percent:g}"
    return f"scans {pct}%"


def load_reported(path: str | Path) -> pd.DataFrame:
    """Read the CSV of published numbers; missing columns or non-numeric values name the file."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, f"cannot read reported numbers: {exc}") from exc
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise DataFormatError(path, f"missing column(s) {missing}")
    values = pd.to_numeric(df["value"], errors="coerce")
    bad = df.loc[values.isna(), "value"]
    if not bad.empty:
        line = int(bad.index[0]) + 2  # header is line 1
        raise DataFormatError(path, f"line {line}: value {bad.iloc[0]!r} is not a number")
    df = df.copy()
    df["value"] = values.astype(float)
    df.attrs["path"] = str(path)
    return df


def match_reported(study: StudyDef, table: pd.DataFrame) -> list[ReportedRow]:
    """Reported rows of a study, in row order; each (method, backbone) of the mapping is one row.

    Rows without any matching number are dropped (and logged), never filled in.
    """
    rmap = study.reported
    if rmap is None:
        return []
    where = table.attrs.get("path", "<reported numbers>")
    sel = table[(table["dataset"] == rmap.dataset) & (table["metric"] == rmap.metric)]
    rows: list[ReportedRow] = []
    for variant in study.variants:
        for method, backbone in rmap.methods.get(variant, ()):
            row = ReportedRow(
                label=f"{method} (reported; {backbone})",
                variant=variant,
                method=method,
                backbone=backbone,
            )
            mine = sel[(sel["method"] == method) & (sel["backbone"] == backbone)]
            for budget in study.budgets:
                name = rmap.budgets.get(budget) or csv_budget_name(budget)
                hit = mine[mine["budget_or_task"] == name]
                if len(hit) > 1:
                    raise DataFormatError(
                        where,
                        f"{len(hit)} rows for ({rmap.dataset}, {name}, {backbone}, {method}, "
                        f"{rmap.metric}); expected one",
                    )
                if len(hit) == 1:
                    value = float(hit["value"].iloc[0])
                    if not math.isfinite(value):
                        continue
                    row.values[budget] = (value, str(hit["source"].iloc[0]))
            if row.values:
                rows.append(row)
            else:
                log.warning(
                    "study %s: no reported %s numbers for %s / %s on %s",
                    study.name, rmap.metric, method, backbone, rmap.dataset,
                )  # fmt: skip
    return rows
