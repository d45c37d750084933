"""Convergence study: mIoU against the number of training iterations, per label budget.

A table cell means something only when its schedule is converged. The study trains one variant
(Sup-only) at fractions and multiples of the default schedule (e.g. 0.25x, 0.5x, 1x, 2x) for a
few budgets and seeds; this module turns those runs' ``metrics.json`` files into a figure and a
Markdown summary with the three checks of the default regime:

(a) doubling the chosen schedule changes the full-budget mIoU by at most ``max_doubling_gain``
    points (mean over seeds);
(b) full minus the smallest scan budget is at least ``min_budget_gap`` points for every seed (and
    full minus scribbles positive for every seed, when scribble runs are given);
(c) the standard deviation over seeds is at most ``max_std`` points for budgets of 10 % and more.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kdseg.budgets import parse_budget
from kdseg.errors import DataFormatError
from kdseg.io import atomic_open
from kdseg.report.collect import load_metrics
from kdseg.report.study import BUDGET_DISPLAY


def load_convergence_runs(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run: ``budget``, ``seed``, ``iterations`` (the run's trainer iterations),
    ``miou`` (%), ``variant``, ``path``."""
    rows = []
    for path in paths:
        rec = load_metrics(path)
        cfg = json.loads(Path(path).read_text())["config"]
        try:
            iterations = int(cfg["trainer"]["iterations"])
        except (KeyError, TypeError, ValueError):
            raise DataFormatError(path, "config.trainer.iterations is missing") from None
        rows.append({k: rec[k] for k in ("variant", "budget", "seed", "miou", "path")})
        rows[-1]["iterations"] = iterations
    return pd.DataFrame(rows, columns=["variant", "budget", "seed", "iterations", "miou", "path"])


@dataclass(frozen=True)
class ConvergenceChecks:
    """The measured checks (see the module docstring) at the chosen schedule ``iterations``."""

    iterations: int
    doubling_gain: float | None
    """mean full-budget mIoU at 2x minus at 1x, points (None: a schedule is missing)"""
    budget_gaps: dict[int, float]
    """seed -> full minus the smallest scan budget at 1x, points"""
    scribble_gaps: dict[int, float]
    """seed -> full minus scribbles at 1x, points (empty without scribble runs)"""
    stds: dict[str, float]
    """budget (>= 10 % of scans) -> std over seeds at 1x, points"""

    def passed(
        self, max_doubling_gain: float = 1.0, min_budget_gap: float = 5.0, max_std: float = 2.5
    ) -> dict[str, bool]:
        """``{"a": ..., "b": ..., "c": ...}``: whether each check holds."""
        return {
            "a": self.doubling_gain is not None and abs(self.doubling_gain) <= max_doubling_gain,
            "b": bool(self.budget_gaps)
            and all(g >= min_budget_gap for g in self.budget_gaps.values())
            and all(g > 0 for g in self.scribble_gaps.values()),
            "c": bool(self.stds) and all(s <= max_std for s in self.stds.values()),
        }


def _at(runs: pd.DataFrame, budget: str, iterations: int) -> pd.Series:
    sel = runs[(runs["budget"] == budget) & (runs["iterations"] == iterations)]
    return sel.set_index("seed")["miou"]


def convergence_checks(runs: pd.DataFrame, iterations: int) -> ConvergenceChecks:
    """The checks of the schedule ``iterations`` from the study's runs."""
    full_1x, full_2x = _at(runs, "full", iterations), _at(runs, "full", 2 * iterations)
    gain = float(full_2x.mean() - full_1x.mean()) if len(full_1x) and len(full_2x) else None
    scans = sorted(
        {b for b in runs["budget"] if parse_budget(b).kind == "scans"},
        key=lambda b: parse_budget(b).percent,
    )
    gaps: dict[int, float] = {}
    if scans:
        small = _at(runs, scans[0], iterations)
        gaps = {int(s): float(full_1x[s] - small[s]) for s in full_1x.index if s in small.index}
    scribbles = _at(runs, "scribbles", iterations)
    scr = {int(s): float(full_1x[s] - scribbles[s]) for s in full_1x.index if s in scribbles.index}
    stds = {}
    for budget in sorted(set(runs["budget"])):
        b = parse_budget(budget)
        if b.kind == "full" or (b.kind == "scans" and b.percent >= 10):
            v = _at(runs, budget, iterations)
            if len(v) > 1:
                stds[budget] = float(np.std(v.to_numpy(), ddof=1))
    return ConvergenceChecks(iterations, gain, gaps, scr, stds)


def convergence_figure(runs: pd.DataFrame, iterations: int, title: str) -> Figure:
    """mIoU against iterations (log2 axis), one line per budget: mean ± std over seeds and
    every seed as a dot; the chosen schedule marked."""
    fig = Figure(figsize=(5.2, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = mpl.colormaps["tab10"].colors
    budgets = sorted(set(runs["budget"]), key=lambda b: -parse_budget(b).percent)
    for i, budget in enumerate(budgets):
        d = runs[runs["budget"] == budget]
        g = d.groupby("iterations")["miou"]
        mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
        color = colors[i % len(colors)]
        label = BUDGET_DISPLAY.get(budget, budget)
        ax.errorbar(mean.index, mean, yerr=std, color=color, marker="o", ms=4, lw=1.4,
                    capsize=2.5, label=f"{label} (n={d['seed'].nunique()} seeds)")  # fmt: skip
        ax.scatter(d["iterations"], d["miou"], color=color, s=7, alpha=0.45, lw=0)
    ax.axvline(iterations, color="0.4", lw=0.8, ls="--")
    ax.annotate("chosen schedule", (iterations, ax.get_ylim()[0]), xytext=(3, 4),
                textcoords="offset points", fontsize=7, color="0.3")  # fmt: skip
    ax.set_xscale("log", base=2)
    ticks = sorted(set(runs["iterations"]))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("training iterations")
    ax.set_ylabel("mIoU (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, lw=0.4, alpha=0.5)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def convergence_markdown(runs: pd.DataFrame, checks: ConvergenceChecks) -> str:
    """A Markdown table (mean ± std per budget and schedule) and the three checks."""
    its = sorted(set(runs["iterations"]))
    budgets = sorted(set(runs["budget"]), key=lambda b: -parse_budget(b).percent)
    head = "| budget | " + " | ".join(f"{i} it." for i in its) + " |"
    lines = [head, "|---|" + "---:|" * len(its)]
    for b in budgets:
        cells = []
        for i in its:
            v = _at(runs, b, i).to_numpy()
            sd = f" ± {np.std(v, ddof=1):.1f}" if len(v) > 1 else ""
            cells.append(f"{v.mean():.1f}{sd}" if len(v) else "–")
        lines.append(f"| {BUDGET_DISPLAY.get(b, b)} | " + " | ".join(cells) + " |")
    ok = checks.passed()
    gain = "n/a" if checks.doubling_gain is None else f"{checks.doubling_gain:+.2f}"
    gaps = ", ".join(f"seed {s}: {g:.1f}" for s, g in sorted(checks.budget_gaps.items()))
    scr = ", ".join(f"seed {s}: {g:.1f}" for s, g in sorted(checks.scribble_gaps.items()))
    stds = ", ".join(f"{BUDGET_DISPLAY.get(b, b)} {v:.2f}" for b, v in checks.stds.items())
    lines += [
        "",
        f"Chosen schedule: {checks.iterations} iterations.",
        f"- (a) doubling it changes full-budget mIoU by {gain} points (mean over seeds; "
        f"limit 1.0): {'holds' if ok['a'] else 'FAILS'}",
        f"- (b) full minus the smallest scan budget per seed: {gaps or 'n/a'}"
        + (f"; full minus scribbles: {scr}" if scr else "")
        + f" (limits >= 5 and > 0): {'holds' if ok['b'] else 'FAILS'}",
        f"- (c) std over seeds, budgets >= 10 %: {stds or 'n/a'} (limit 2.5): "
        f"{'holds' if ok['c'] else 'FAILS'}",
    ]
    return "\n".join(lines) + "\n"


def render_convergence(
    paths: Sequence[str | Path],
    iterations: int,
    title: str,
    out_pdf: str | Path,
    out_png: str | Path,
    out_markdown: str | Path | None = None,
) -> ConvergenceChecks:
    """Write the figure (PDF and 200-dpi PNG) and the Markdown summary, each atomically."""
    runs = load_convergence_runs(paths)
    if runs.empty:
        raise DataFormatError(Path("."), "no convergence runs given")
    checks = convergence_checks(runs, iterations)
    fig = convergence_figure(runs, iterations, title)
    with mpl.rc_context({"pdf.fonttype": 42}):
        with atomic_open(out_pdf, "wb") as fh:
            fig.savefig(fh, format="pdf")
        with atomic_open(out_png, "wb") as fh:
            fig.savefig(fh, format="png", dpi=200)
    if out_markdown is not None:
        with atomic_open(out_markdown, "w") as fh:
            fh.write(convergence_markdown(runs, checks))
    return checks
