"""Aggregate runs into paper tables: mean ± std over seeds, best/second marks, missing cells.

A :class:`Table` is renderer-neutral (plain text); :mod:`kdseg.report.latex` and
:mod:`kdseg.report.pdf` draw the same object, so both outputs show the same numbers and marks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kdseg.errors import DataFormatError
from kdseg.report.collect import IOU_PREFIX, PARITY_PREFIX, class_names
from kdseg.report.reported import ReportedRow
from kdseg.report.study import StudyDef

log = logging.getLogger(__name__)

DECIMALS = 1
MISSING = "–"  # en dash
CONVENTION = (
    "IoU per class from the confusion matrix accumulated over all validation points, "
    "mIoU = mean over the 19 SemanticKITTI classes (semantic-kitti-api convention)"
)


@dataclass
class Cell:
    """One table cell. ``mean is None`` means no run exists (rendered as an en dash)."""

    mean: float | None
    std: float | None = None
    n: int = 0
    mark: str | None = None  # "best" | "second" | None
    note: str | None = None  # footnote marker (reported numbers) or None
    partial: bool = False  # fewer seeds than the study asks for

    def text(self, show_std: bool = True) -> tuple[str, str]:
        """(mean text, std text); the std text is empty when not shown or undefined."""
        if self.mean is None:
            return MISSING, ""
        std = f"{self.std:.{DECIMALS}f}" if show_std and self.std is not None else ""
        return f"{self.mean:.{DECIMALS}f}", std


@dataclass
class Row:
    """One table row: a measured method variant or a reported (published) number."""

    label: str
    cells: list[Cell]
    reported: bool = False
    note: str | None = None


@dataclass
class Table:
    """A renderer-neutral table with its caption and footnotes (all plain text)."""

    key: str
    caption: str
    columns: list[str]
    rows: list[Row]
    show_std: bool = True
    rotate_headers: bool = False
    group: str | None = None  # spanning header above the value columns
    groups: list[tuple[str, int]] | None = None  # (header, columns) spans; instead of group
    footnotes: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def measured(self) -> list[Row]:
        """The rows that are our own runs."""
        return [r for r in self.rows if not r.reported]


def mark_best(values: Sequence[float | None]) -> list[str | None]:
    """``"best"``/``"second"`` per value, compared at the shown precision; ties share a mark.

    ``second`` is the largest shown value below the best one; ``None`` values take no mark.
    """
    shown = [None if v is None or math.isnan(v) else round(v, DECIMALS) for v in values]
    distinct = sorted({v for v in shown if v is not None}, reverse=True)
    marks: list[str | None] = []
    for v in shown:
        if v is None:
            marks.append(None)
        elif v == distinct[0]:
            marks.append("best")
        elif len(distinct) > 1 and v == distinct[1]:
            marks.append("second")
        else:
            marks.append(None)
    return marks


def _apply_marks(rows: list[Row], n_cols: int) -> None:
    for j in range(n_cols):
        cells = [r.cells[j] for r in rows]
        for cell, mark in zip(cells, mark_best([c.mean for c in cells]), strict=True):
            cell.mark = mark


def select_runs(study: StudyDef, runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the study; wrong dataset/scale is an error, other rows are logged and dropped."""
    for col, want in (("dataset", study.dataset), ("scale", study.scale)):
        bad = runs[runs[col] != want]
        if not bad.empty:
            raise DataFormatError(
                bad["path"].iloc[0],
                f"{col} {bad[col].iloc[0]!r} is not the {col} {want!r} of study {study.name!r}",
            )
    keep = (
        runs["variant"].isin(study.variants)
        & runs["budget"].isin(study.budgets)
        & runs["seed"].isin(list(study.seeds))
    )
    for path in runs.loc[~keep, "path"]:
        log.warning(
            "study %s: ignoring %s (variant/budget/seed not in the study)", study.name, path
        )
    return runs[keep]


def _aggregate(values: np.ndarray) -> Cell:
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return Cell(mean=None, n=int(values.size))
    std = float(np.std(finite, ddof=1)) if finite.size > 1 else None
    return Cell(mean=float(finite.mean()), std=std, n=int(finite.size))


def missing_runs(
    study: StudyDef, runs: pd.DataFrame, budgets: Sequence[str] | None = None
) -> list[str]:
    """Plain-text list of the (variant, budget) cells lacking some of the study's seeds."""
    out = []
    for variant, display in study.rows:
        for budget in budgets if budgets is not None else study.budgets:
            have = set(runs[(runs["variant"] == variant) & (runs["budget"] == budget)]["seed"])
            lack = [s for s in study.seeds if s not in have]
            if lack:
                seeds = ", ".join(str(s) for s in lack)
                out.append(f"{display} {study.column_display(budget)} (seed {seeds})")
    return out


def _seed_phrase(study: StudyDef) -> str:
    seeds = ", ".join(str(s) for s in study.seeds)
    if len(study.seeds) == 1:
        return f"single run (seed {seeds}): the mean alone, no standard deviation"
    return (
        f"mean ± sample standard deviation (ddof = 1) over seeds {seeds} "
        f"({len(study.seeds)} runs per cell)"
    )


def protocol_phrase(study: StudyDef, runs: pd.DataFrame) -> str:
    """How the runs were made, from their records: the label splits (one fixed split file per
    budget, or a new split per seed) and which network each row reports (student or teacher)."""
    if runs.empty:
        return ""
    parts = []
    splits = runs.groupby("budget")["split_seed"].nunique()
    if (splits == 1).all() and runs["split_seed"].nunique() == 1:
        seed = int(runs["split_seed"].iloc[0])
        parts.append(
            f"Label splits: one fixed split per budget (drawn with seed {seed}) shared by every "
            "seed, as in the published protocol; seeds change initialisation and sampling"
        )
    elif (runs["split_seed"] == runs["seed"]).all():
        parts.append("Label splits: a new split per seed (drawn with the run's seed)")
    else:
        parts.append("Label splits: mixed (see each run's config.split_seed)")
    shown = []
    for variant, display in study.rows:
        nets = sorted(set(runs.loc[runs["variant"] == variant, "deployed"]))
        if nets:
            shown.append(f"{display} {'/'.join(nets)}")
    if shown:
        parts.append("Network evaluated (each method's published choice): " + ", ".join(shown))
    return " " + ". ".join(parts) + "."


def _missing_phrase(missing: list[str], partial: str = "a cell with fewer seeds shows n") -> str:
    if not missing:
        return ""
    return f" Missing runs ({MISSING} = no run; {partial}): " + "; ".join(missing) + "."


def parity_footnote(study: StudyDef, runs: pd.DataFrame) -> str | None:
    """The inference-parity note of a study's runs (``None`` when no run measured parity).

    Each run compares its deployed network with a Sup-only network of the same backbone and
    voxel size (parameters; median latency, timed interleaved in one process): the note gives the
    mean ratios over all the study's runs that measured them, then per row.
    """
    p, t = PARITY_PREFIX + "parameters_ratio", PARITY_PREFIX + "latency_ratio"
    runs = runs.dropna(subset=[p, t])
    if runs.empty:
        return None
    rows = []
    for variant, display in study.rows:
        sel = runs[runs["variant"] == variant]
        if not sel.empty:
            rows.append(f"{display} ×{sel[p].mean():.3f} / ×{sel[t].mean():.2f} (n={len(sel)})")
    return (
        "Inference parity with Sup-only (deployed network against a Sup-only network of the "
        "same backbone and voxel size; median latency per frame, timed interleaved on the same "
        f"validation frames in one process): mean over {len(runs)} runs, parameters "
        f"×{runs[p].mean():.3f}, latency ×{runs[t].mean():.2f}. Per row, parameters / latency: "
        + "; ".join(rows)
        + "."
    )


def build_main_table(
    study: StudyDef, runs: pd.DataFrame, reported: Sequence[ReportedRow] = ()
) -> Table:
    """The study table: rows = variants (+ reported rows), columns = budgets, cells = mIoU (%)."""
    runs = select_runs(study, runs)
    rows = []
    for variant, display in study.rows:
        cells = []
        for budget in study.budgets:
            sel = runs[(runs["variant"] == variant) & (runs["budget"] == budget)]
            cell = _aggregate(sel["miou"].to_numpy(dtype=float))
            cell.partial = cell.mean is not None and cell.n < len(study.seeds)
            cells.append(cell)
        rows.append(Row(label=display, cells=cells))
    _apply_marks(rows, len(study.budgets))
    missing = missing_runs(study, runs)
    for item in missing:
        log.warning("study %s: missing run %s", study.name, item)

    footnotes: list[tuple[str, str]] = []
    for rep in reported:
        sources = [rep.values[b][1] for b in study.budgets if b in rep.values]
        markers = []
        for src in sources:
            known = [m for m, text in footnotes if text == src]
            if not known:
                known = [chr(ord("a") + len(footnotes))]
                footnotes.append((known[0], src))
            markers.append(known[0])
        one = len(set(markers)) == 1
        cells = []
        for b in study.budgets:
            if b not in rep.values:
                cells.append(Cell(mean=None))
                continue
            value, src = rep.values[b]
            note = None if one else next(m for m, t in footnotes if t == src)
            cells.append(Cell(mean=value, n=1, note=note))
        rows.append(
            Row(label=rep.label, cells=cells, reported=True, note=markers[0] if one else None)
        )

    caption = (
        f"{study.title}. Semantic segmentation mIoU (%) on {study.dataset_name} "
        f"({study.scale} scale) for each label budget; {_seed_phrase(study)}. {CONVENTION}. "
        "Best measured result per column in bold, second best underlined "
        "(compared at the shown precision; ties share the mark)."
    )
    caption += protocol_phrase(study, runs)
    if reported:
        caption += (
            " Rows in italics are published numbers (reported; backbone in parentheses), "
            "not re-run here and excluded from the bold/underline marks."
        )
    caption += _missing_phrase(missing)
    parity = parity_footnote(study, runs)
    if parity is not None:
        footnotes.append(("*", parity))
    return Table(
        key=f"{study.name}-main",
        caption=caption,
        columns=[study.column_display(b) for b in study.budgets],
        rows=rows,
        show_std=len(study.seeds) > 1,
        group=f"Label budget ({study.dataset_name})",
        footnotes=footnotes,
        missing=missing,
    )


def build_per_class_table(study: StudyDef, runs: pd.DataFrame, budget: str | None = None) -> Table:
    """Per-class IoU (%) at one budget: rows = variants, columns = the runs' classes (19 for
    SemanticKITTI, 16 for nuScenes) + mIoU (means)."""
    budget = budget or study.class_budget
    if budget not in study.budgets:
        raise DataFormatError("<study>", f"budget {budget!r} is not a column of {study.name!r}")
    runs = select_runs(study, runs)
    runs = runs[runs["budget"] == budget]
    classes = class_names(runs)
    keys = [IOU_PREFIX + c for c in classes] + ["miou"]
    rows = []
    for variant, display in study.rows:
        sel = runs[runs["variant"] == variant]
        cells = [_aggregate(sel[k].to_numpy(dtype=float)) for k in keys]
        partial = 0 < len(sel) < len(study.seeds)  # said once, on the row label
        rows.append(Row(label=f"{display} (n={len(sel)})" if partial else display, cells=cells))
    _apply_marks(rows, len(keys))
    missing = missing_runs(study, runs, [budget])
    if len(study.seeds) > 1:
        seeds = f"mean over seeds {', '.join(str(s) for s in study.seeds)}"
    else:
        seeds = f"single run (seed {study.seeds[0]})"
    caption = (
        f"{study.title}: per-class IoU (%) on {study.dataset_name} ({study.scale} scale) at "
        f"label budget {study.column_display(budget)}; {seeds}. {CONVENTION}. "
        "Best per column in bold, second best underlined."
    )
    caption += _missing_phrase(missing, "a row with fewer seeds shows n")
    return Table(
        key=f"{study.name}-per-class",
        caption=caption,
        columns=[*classes, "mIoU"],
        rows=rows,
        show_std=False,
        rotate_headers=True,
        missing=missing,
    )
