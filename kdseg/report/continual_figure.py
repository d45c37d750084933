"""The per-step figure of a continual study: mIoU (%) of all classes seen so far after each step
of one task (15-1 for table 3), a line per method variant (mean over seeds, error bars = sample
std). A joint-trained run (offline task) is drawn dashed: its IoU averaged over the classes seen
after each step, the upper bound of that step."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kdseg.datasets.continual import get_task
from kdseg.datasets.continual_metrics import mean_iou
from kdseg.io import atomic_open
from kdseg.report.continual import OFFLINE, ContinualStudy, TaskRun


def step_curves(
    study: ContinualStudy, runs: Sequence[TaskRun]
) -> dict[str, tuple[np.ndarray, np.ndarray, bool]]:
    """variant -> (mean, std) per step in % (NaN where no run) and whether it is joint-trained."""
    task = get_task(study.dataset, study.shown_figure_task)
    out = {}
    for variant, _ in study.rows:
        own = [r for r in runs if r.variant == variant and r.task == task.name]
        offline = not own
        mine = own or [r for r in runs if r.variant == variant and r.task == OFFLINE]
        if not mine:
            continue
        per_run = []
        for r in mine:
            if offline:
                vals = [mean_iou(r.iou, task.seen_classes(t)) for t in range(task.num_steps)]
            else:
                vals = list(r.steps_miou)
            per_run.append([np.nan if v is None else 100.0 * v for v in vals])
        arr = np.array(per_run, dtype=float)
        std = np.nanstd(arr, axis=0, ddof=1) if len(arr) > 1 else np.zeros(arr.shape[1])
        out[variant] = (np.nanmean(arr, axis=0), std, offline)
    return out


def step_figure(study: ContinualStudy, runs: Sequence[TaskRun]) -> Figure:
    """The figure (not yet saved)."""
    task = get_task(study.dataset, study.shown_figure_task)
    curves = step_curves(study, runs)
    fig = Figure(figsize=(5.4, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = mpl.colormaps["tab10"].colors
    markers = "osv^<>pPX*h"
    steps = np.arange(task.num_steps)
    for i, (variant, display) in enumerate(study.rows):
        if variant not in curves:
            continue
        mean, std, offline = curves[variant]
        ax.errorbar(
            steps, mean, yerr=std, color="0.3" if offline else colors[i % len(colors)],
            ls="--" if offline else "-", marker=None if offline else markers[i % len(markers)],
            ms=4, lw=1.4, capsize=2.5, label=display + (" (joint, upper bound)" if offline else ""),
        )  # fmt: skip
    labels = [f"{t}\n+{len(task.new_classes(t))}" if t else f"0\n(0-{task.steps[0][-1]})"
              for t in steps]  # fmt: skip
    ax.set_xticks(steps, labels)
    ax.set_xlabel("step (classes added)")
    ax.set_ylabel("mIoU of the classes seen so far (%)")
    seeds = len(study.seeds)
    err = f"error bars: std over {seeds} seeds" if seeds > 1 else "single seed"
    name = study.dataset_display or study.dataset
    ax.set_title(f"{name} {task.name} ({study.setting}, {study.scale} scale; {err})", fontsize=9)
    ax.grid(True, lw=0.4, alpha=0.5)
    if curves:
        ax.legend(fontsize=7, frameon=False, loc="lower left")
    else:
        ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def save_step_figure(
    study: ContinualStudy, runs: Sequence[TaskRun], out_pdf: str | Path, out_png: str | Path
) -> None:
    """Write the figure as PDF and PNG (200 dpi), each atomically."""
    fig = step_figure(study, runs)
    with mpl.rc_context({"pdf.fonttype": 42}):
        with atomic_open(out_pdf, "wb") as fh:
            fig.savefig(fh, format="pdf")
        with atomic_open(out_png, "wb") as fh:
            fig.savefig(fh, format="png", dpi=200)
