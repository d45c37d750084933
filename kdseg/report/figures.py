"""Budget curve: mIoU (%) against the label budget, one line per method variant.

Scan budgets (``scans-P`` and ``full`` = 100 %) share a log x-axis and are joined by a line.
``scribbles`` labels every scan but only about 8 % of the points, so it is not a point of that
line: it is drawn as a separate, unconnected diamond at x = 8.06 % (its share of labelled points)
in the variant's colour, with a "scribbles" annotation.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator

from kdseg.budgets import parse_budget
from kdseg.io import atomic_open
from kdseg.report.study import SCRIBBLE_POINT_SHARE, StudyDef
from kdseg.report.tables import select_runs


def budget_x(budget: str) -> float:
    """x position (% of labelled scans, or of points for scribbles) of a budget."""
    b = parse_budget(budget)
    return SCRIBBLE_POINT_SHARE if b.kind == "scribbles" else b.percent


def curve_data(study: StudyDef, runs: pd.DataFrame) -> pd.DataFrame:
    """Per (variant, budget): x, mean, std (sample, ddof=1; 0 with one seed) and n of the mIoU."""
    runs = select_runs(study, runs)
    rows = []
    for variant in study.variants:
        for budget in study.budgets:
            v = runs[(runs["variant"] == variant) & (runs["budget"] == budget)]["miou"]
            if v.empty:
                continue
            std = float(np.std(v.to_numpy(), ddof=1)) if len(v) > 1 else 0.0
            rows.append(
                {
                    "variant": variant,
                    "budget": budget,
                    "x": budget_x(budget),
                    "scribbles": parse_budget(budget).kind == "scribbles",
                    "mean": float(v.mean()),
                    "std": std,
                    "n": len(v),
                }
            )
    return pd.DataFrame(rows, columns=["variant", "budget", "x", "scribbles", "mean", "std", "n"])


def budget_curve(study: StudyDef, runs: pd.DataFrame) -> Figure:
    """The budget-curve figure (not yet saved)."""
    data = curve_data(study, runs)
    fig = Figure(figsize=(5.2, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = mpl.colormaps["tab10"].colors
    markers = "osv^<>pPX*h"
    for i, (variant, display) in enumerate(study.rows):
        d = data[data["variant"] == variant].sort_values("x")
        color = colors[i % len(colors)]
        scans = d[~d["scribbles"]]
        if not scans.empty:
            ax.errorbar(
                scans["x"], scans["mean"], yerr=scans["std"], color=color,
                marker=markers[i % len(markers)], ms=4.5, lw=1.4, capsize=2.5, label=display,
            )  # fmt: skip
        scr = d[d["scribbles"]]
        if not scr.empty:
            ax.errorbar(
                scr["x"], scr["mean"], yerr=scr["std"], color=color, marker="D", ms=5.5,
                ls="none", capsize=2.5, mfc="white", mew=1.4,
                label=None if not scans.empty else display,
            )  # fmt: skip
    handles, labels = ax.get_legend_handles_labels()
    if data["scribbles"].any():
        handles.append(
            Line2D([], [], color="0.35", marker="D", mfc="white", mew=1.4, ls="none", ms=5.5)
        )
        labels.append(f"scribbles ({SCRIBBLE_POINT_SHARE:g}% of points)")
        top = data[data["scribbles"]]["mean"].max()
        ax.annotate(
            "scribbles\n(~8% of points)", (SCRIBBLE_POINT_SHARE, top), xytext=(0, 14),
            textcoords="offset points", ha="center", fontsize=7, color="0.3",
        )  # fmt: skip
    ax.set_xscale("log")
    ticks = sorted({budget_x(b) for b in study.budgets if parse_budget(b).kind != "scribbles"})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}%" if t < 100 else "100%\n(full)" for t in ticks])
    xs = [*ticks, SCRIBBLE_POINT_SHARE] if data["scribbles"].any() else ticks
    if xs:
        ax.set_xlim(min(xs) / 1.4, max(xs) * 1.4)
    ax.set_xlabel("label budget (% of scans; scribbles: % of points)")
    ax.set_ylabel("mIoU (%)")
    seeds = len(study.seeds)
    err = f"error bars: std over {seeds} seeds" if seeds > 1 else "single seed"
    ax.set_title(f"{study.title} — {study.dataset_name} ({err})", fontsize=9)
    ax.grid(True, which="major", lw=0.4, alpha=0.5)
    if not data.empty:
        lo, hi = data["mean"].min(), data["mean"].max()
        span = max(hi - lo, 1.0)
        ax.set_ylim(max(0.0, lo - 0.15 * span - data["std"].max()), hi + 0.3 * span)
        ax.legend(handles, labels, fontsize=7, frameon=False, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def save_budget_curve(
    study: StudyDef, runs: pd.DataFrame, out_pdf: str | Path, out_png: str | Path
) -> None:
    """Write the budget curve as PDF and PNG (200 dpi), each atomically."""
    fig = budget_curve(study, runs)
    with mpl.rc_context({"pdf.fonttype": 42}):
        with atomic_open(out_pdf, "wb") as fh:
            fig.savefig(fh, format="pdf")
        with atomic_open(out_png, "wb") as fh:
            fig.savefig(fh, format="png", dpi=200)
