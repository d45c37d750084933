"""Continual 2D studies (table 3): tasks as column groups (old / new / all), rows = method
variants, mean ± std over seeds; the published numbers (PLOP's Table 1, RCIL's README) beside
ours when the data are real; a figure of the mIoU of all seen classes after each step.

Read from the task records (a run folder's ``metrics.json``, :class:`kdseg.record.RunRecord`
with its ``continual`` block, written by ``kdseg continual-summary``). Columns after the last
step (:func:`kdseg.datasets.continual_metrics.final_columns`): ``old`` = the step-0 classes with
background (PLOP's "0-15"), ``new`` = every later class ("16-20"), ``all``. A run trained on
the ``offline`` task (every class in one step, joint training) is scored on each task's columns
from its per-class IoU and shown below the continual rows as the upper bound.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kdseg.datasets.continual import get_task
from kdseg.datasets.continual_metrics import final_columns, mean_iou, mean_over_steps
from kdseg.errors import ConfigError, DataFormatError
from kdseg.io import write_text
from kdseg.record import RunRecord
from kdseg.report.latex import render_document
from kdseg.report.markdown import table_markdown
from kdseg.report.pdf import Engine, write_pdf
from kdseg.report.tables import Cell, Row, Table, mark_best

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = ("old", "new", "all")
OFFLINE = "offline"
SETTING_WORDS = {"overlap": "overlapped", "disjoint": "disjoint"}
METRIC_PREFIX = {"old": "mIoU old", "new": "mIoU new", "all": "mIoU all"}


@dataclass(frozen=True)
class ContinualStudy:
    """One continual table: ``tasks`` (column groups) x ``rows`` (variant, display) x seeds.

    ``reported``: variant -> ``[[CSV method, CSV source prefix], ...]``, each one reported row
    (e.g. ``[ILT, PLOP Table 1]``); ``reported_dataset``: the CSV ``dataset`` value.
    ``figure_task``: the task of the per-step figure (default: the task with most steps).
    """

    name: str
    title: str
    dataset: str
    setting: str
    tasks: Sequence[str]
    rows: Sequence[tuple[str, str]]
    seeds: Sequence[int] = (0, 1, 2)
    scale: str = "default"
    dataset_display: str | None = None
    figure_task: str | None = None
    reported: Mapping[str, Sequence[tuple[str, str]]] = field(default_factory=dict)
    reported_dataset: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ContinualStudy:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError("study", f"unknown keys {unknown}; known: {sorted(known)}")
        rows = [(r, r) if isinstance(r, str) else (str(r[0]), str(r[1])) for r in d["rows"]]
        return cls(
            name=str(d["name"]), title=str(d["title"]), dataset=str(d["dataset"]),
            setting=str(d["setting"]), tasks=[str(t) for t in d["tasks"]], rows=rows,
            seeds=tuple(int(s) for s in d.get("seeds", (0, 1, 2))),
            scale=str(d.get("scale", "default")), dataset_display=d.get("dataset_display"),
            figure_task=d.get("figure_task"),
            reported={str(v): [(str(m), str(s)) for m, s in items]
                      for v, items in dict(d.get("reported") or {}).items()},
            reported_dataset=d.get("reported_dataset"),
        )  # fmt: skip

    @property
    def shown_figure_task(self) -> str:
        if self.figure_task is not None:
            return self.figure_task
        return max(self.tasks, key=lambda t: get_task(self.dataset, t).num_steps)


@dataclass
class TaskRun:
    """One task record, tidy: IoU by label id of the last step (fractions) and per-step
    ``miou_all``."""

    variant: str
    task: str
    seed: int
    iou: dict[int, float | None]
    steps_miou: list[float | None]
    mean_over_steps: float | None
    path: str
    step0_variant: str | None = None


def load_task_record(path: str | Path, study: ContinualStudy) -> TaskRun:
    """Read a task record of ``study`` (dataset, setting and scale checked)."""
    path = Path(path)
    rec = RunRecord.read(path)
    cont = rec.continual
    if not isinstance(cont, dict) or "steps" not in cont:
        raise DataFormatError(path, "is not a continual task record (no continual.steps)")
    cfg = rec.config
    for key, want in (("dataset", study.dataset), ("scale", study.scale)):
        if cfg.get(key) != want:
            raise DataFormatError(path, f"{key} {cfg.get(key)!r} is not the study's {want!r}")
    if cfg.get("task") != OFFLINE and cfg.get("setting") != study.setting:
        raise DataFormatError(path, f"setting {cfg.get('setting')!r} is not {study.setting!r}")
    names = cont["class_names"]
    iou = {int(c): rec.per_class_iou.get(n) for c, n in zip(cont["channels"], names, strict=True)}
    return TaskRun(
        variant=str(cfg["variant"]), task=str(cfg["task"]), seed=int(cfg["seed"]), iou=iou,
        steps_miou=[s["scores"]["miou_all"] for s in cont["steps"]],
        mean_over_steps=cont.get("miou_mean_over_steps"), path=str(path),
        step0_variant=cont["steps"][0].get("variant") if cont["steps"] else None,
    )  # fmt: skip


def _runs_for(runs: Sequence[TaskRun], variant: str, task: str) -> list[TaskRun]:
    """Runs of ``variant`` that give ``task``'s columns: its own task's, or an offline run."""
    own = [r for r in runs if r.variant == variant and r.task == task]
    return own or [r for r in runs if r.variant == variant and r.task == OFFLINE]


def _cell(values: Sequence[float | None], want: int) -> Cell:
    v = np.array([np.nan if x is None else 100.0 * x for x in values], dtype=float)
    finite = v[~np.isnan(v)]
    if finite.size == 0:
        return Cell(mean=None, n=len(values))
    std = float(np.std(finite, ddof=1)) if finite.size > 1 else None
    return Cell(float(finite.mean()), std, int(finite.size), partial=finite.size < want)


def _reported_rows(study: ContinualStudy, table: Any) -> tuple[list[Row], list[str]]:
    """Reported rows from ``reported_numbers.csv`` (a :func:`kdseg.report.reported.
    load_reported` frame), labelled ``method (source)``, and the sources used."""
    rows: list[Row] = []
    notes: list[str] = []
    word = SETTING_WORDS.get(study.setting, study.setting)
    sel = table[table["dataset"] == (study.reported_dataset or study.dataset)]
    for variant, _ in study.rows:
        for method, source in study.reported.get(variant, ()):
            mine = sel[(sel["method"] == method) & sel["source"].str.startswith(source)]
            cells, found = [], False
            for task in study.tasks:
                here = mine[mine["budget_or_task"] == f"{task} {word}"]
                for col in COLUMNS:
                    hit = here[here["metric"].str.startswith(METRIC_PREFIX[col])]
                    if len(hit) > 1:
                        raise DataFormatError(
                            table.attrs.get("path", "<reported>"),
                            f"{len(hit)} rows for {method} {task} {col}",
                        )
                    value = float(hit["value"].iloc[0]) if len(hit) == 1 else None
                    found |= value is not None and math.isfinite(value)
                    cells.append(Cell(mean=value, n=1 if value is not None else 0))
            if not found:
                log.warning("study %s: no reported numbers for %s (%s)", study.name, method, source)
                continue
            if source not in notes:
                notes.append(source)
            rows.append(Row(f"{method} ({source})", cells, reported=True))
    return rows, notes


def build_table(
    study: ContinualStudy, runs: Sequence[TaskRun], reported: Any | None = None
) -> Table:
    """Table 3: rows = variants (continual first, joint-trained last), groups = tasks."""
    measured, upper, missing = [], [], []
    for variant, display in study.rows:
        cells: list[Cell] = []
        offline = False
        for task in study.tasks:
            chosen = _runs_for(runs, variant, task)
            offline |= bool(chosen) and chosen[0].task == OFFLINE
            have = {r.seed for r in chosen}
            lack = [s for s in study.seeds if s not in have]
            if lack:
                missing.append(f"{display} {task} (seed {', '.join(map(str, lack))})")
            scores = [final_columns(get_task(study.dataset, task), r.iou) for r in chosen]
            cells += [_cell([s[c] for s in scores], len(study.seeds)) for c in COLUMNS]
        (upper if offline else measured).append(Row(display, cells))
    for j in range(len(study.tasks) * len(COLUMNS)):
        marks = mark_best([r.cells[j].mean for r in measured])
        for row, mark in zip(measured, marks, strict=True):
            row.cells[j].mark = mark
    rep_rows, notes = _reported_rows(study, reported) if reported is not None else ([], [])
    seeds = ", ".join(map(str, study.seeds))
    if len(study.seeds) > 1:
        seed_text = f"mean ± sample standard deviation (ddof = 1) over seeds {seeds}"
    else:
        seed_text = f"single run (seed {seeds})"
    shared = {r.step0_variant for r in runs if r.task != OFFLINE}
    display = dict(study.rows)
    if len(shared) == 1 and None not in shared:
        (base,) = shared
        step0 = (
            f" Step 0 is one cross-entropy run per seed ({display.get(base, base)}'s; every "
            "method's step 0 is plain cross-entropy), shared by every method and by the tasks "
            "with the same step-0 classes."
        )
    else:
        step0 = " Step 0 of each chain: see its record (config.inputs.old_model)."
    groups = []
    for task in study.tasks:
        t = get_task(study.dataset, task)
        first, rest = t.steps[0], [c for s in t.steps[1:] for c in s]
        groups.append((f"{task} (old {first[0]}-{first[-1]}, new {rest[0]}-{rest[-1]})", 3))
    caption = (
        f"{study.title}. mIoU (%) after the last step of each task on "
        f"{study.dataset_display or study.dataset} ({study.setting}, {study.scale} scale): old = "
        "the step-0 classes with background (PLOP's Table 1 '0-15'), new = every class added "
        f"later, all = every class; {seed_text}. Best continual method per column in bold, "
        f"second underlined.{step0} Rows below the rule are trained on every class at once "
        "(joint training, the upper bound), scored on each task's classes."
    )
    if rep_rows:
        caption += (
            " Rows in italics are published numbers (DeepLabV3-ResNet101 on the real data; "
            f"sources: {', '.join(notes)}), not re-run here and excluded from the marks."
        )
    if missing:
        caption += " Missing runs: " + "; ".join(missing) + "."
    for item in missing:
        log.warning("study %s: missing run %s", study.name, item)
    rows = measured + upper + rep_rows
    return Table(
        key=f"{study.name}-main", caption=caption, columns=list(COLUMNS) * len(study.tasks),
        rows=rows, show_std=len(study.seeds) > 1, groups=groups, missing=missing,
    )  # fmt: skip


def step_table(study: ContinualStudy, runs: Sequence[TaskRun]) -> Table:
    """mIoU of all seen classes after each step of the figure task (the figure's numbers)."""
    task = get_task(study.dataset, study.shown_figure_task)
    rows = []
    for variant, display in study.rows:
        mine = [r for r in runs if r.variant == variant and r.task == task.name]
        per_run = [list(r.steps_miou) for r in mine]
        means = [r.mean_over_steps for r in mine]
        if not mine:  # joint training: its IoU over the classes seen after each step
            mine = [r for r in runs if r.variant == variant and r.task == OFFLINE]
            per_run = [[mean_iou(r.iou, task.seen_classes(t)) for t in range(task.num_steps)]
                       for r in mine]  # fmt: skip
            means = [mean_over_steps(v) for v in per_run]
        cells = [_cell([v[t] for v in per_run], len(study.seeds)) for t in range(task.num_steps)]
        rows.append(Row(display, [*cells, _cell(means, len(study.seeds))]))
    return Table(
        key=f"{study.name}-steps",
        caption=f"{study.title}: mIoU (%) of all classes seen so far after each step of "
        f"{task.name} ({study.setting}), and their mean over steps (PLOP's 'avg'); mean over "
        "seeds. Joint training: its IoU averaged over the same classes.",
        columns=[f"step {t}" for t in range(task.num_steps)] + ["mean"],
        rows=rows, show_std=len(study.seeds) > 1,
    )  # fmt: skip


@dataclass
class ContinualResult:
    table: Table
    steps: Table
    engine: str
    missing: list[str]
    outputs: list[Path]


def render_continual(
    study: ContinualStudy,
    metrics_files: Sequence[str | Path],
    *,
    tex: str | Path,
    pdf: str | Path,
    markdown: str | Path,
    figure_pdf: str | Path,
    figure_png: str | Path,
    reported_csv: str | Path | None = None,
    engine: Engine = "auto",
) -> ContinualResult:
    """Write the study's LaTeX, PDF and Markdown tables and the per-step figure."""
    from kdseg.report.continual_figure import save_step_figure
    from kdseg.report.reported import load_reported

    runs = [load_task_record(p, study) for p in metrics_files]
    reported = load_reported(reported_csv) if reported_csv is not None else None
    table = build_table(study, runs, reported)
    steps = step_table(study, runs)
    source = render_document([table, steps])
    write_text(tex, source)
    used = write_pdf([table, steps], source, pdf, engine=engine)
    parts = [f"{t.caption}\n\n{table_markdown(t)}\n" for t in (table, steps)]
    write_text(markdown, "\n".join(parts))
    save_step_figure(study, runs, figure_pdf, figure_png)
    outputs = [Path(p) for p in (tex, pdf, markdown, figure_pdf, figure_png)]
    return ContinualResult(table, steps, used, table.missing, outputs)
