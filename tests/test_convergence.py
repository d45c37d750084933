"""The convergence study's figure, Markdown summary and the three checks of a default regime."""

from __future__ import annotations

import json
from pathlib import Path

from kdseg.datasets.semantickitti_labels import CLASS_NAMES
from kdseg.report.convergence import (
    convergence_checks,
    load_convergence_runs,
    render_convergence,
)

# mIoU (fractions) by (budget, iterations) for seeds 0, 1, 2
CURVES = {
    ("full", 250): [0.40, 0.41, 0.42],
    ("full", 500): [0.50, 0.51, 0.52],
    ("full", 1000): [0.505, 0.515, 0.53],  # mean 51.67: +0.67 points over 500, converged
    ("scans-1", 500): [0.40, 0.45, 0.43],  # gaps 10, 6, 9
    ("scans-10", 500): [0.48, 0.49, 0.53],  # std 2.6: fails (c)
    ("scribbles", 500): [0.45, 0.47, 0.52],  # full - scribbles: 5, 4, 0 -> not > 0 for seed 2
}


def _write(root: Path) -> list[Path]:
    paths = []
    for (budget, its), values in CURVES.items():
        for seed, miou in enumerate(values):
            cfg = {"method": "sup_only", "variant": f"sup_only_{its}", "dataset": "street"}
            cfg |= {"budget": budget, "seed": seed, "scale": "default"}
            cfg["trainer"] = {"iterations": its}
            path = root / f"{budget}_{its}_{seed}" / "metrics.json"
            path.parent.mkdir(parents=True)
            per_class = dict.fromkeys(CLASS_NAMES, miou)
            path.write_text(json.dumps({"miou": miou, "per_class_iou": per_class, "config": cfg}))
            paths.append(path)
    return paths


def test_checks_by_hand(tmp_path: Path) -> None:
    runs = load_convergence_runs(_write(tmp_path))
    checks = convergence_checks(runs, 500)
    assert abs(checks.doubling_gain - 2 / 3) < 1e-9
    assert {s: round(g, 6) for s, g in checks.budget_gaps.items()} == {0: 10.0, 1: 6.0, 2: 9.0}
    assert {s: round(g, 6) for s, g in checks.scribble_gaps.items()} == {0: 5.0, 1: 4.0, 2: 0.0}
    assert set(checks.stds) == {"full", "scans-10"}
    assert checks.passed() == {"a": True, "b": False, "c": False}
    assert convergence_checks(runs, 250).passed()["a"] is False  # +10 points from 250 to 500
    assert convergence_checks(runs, 1000).doubling_gain is None  # no 2000-iteration runs


def test_render_writes_figure_and_summary(tmp_path: Path) -> None:
    paths = _write(tmp_path / "runs")
    out = tmp_path / "out"
    render_convergence(paths, 500, "toy", out / "c.pdf", out / "c.png", out / "c.md")
    assert (out / "c.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "c.png").read_bytes().startswith(b"\x89PNG")
    md = (out / "c.md").read_text()
    assert "| Full | 41.0 ± 1.0 | 51.0 ± 1.0 | 51.7 ± 1.3 |" in md
    assert "(a) doubling it changes full-budget mIoU by +0.67 points" in md and "FAILS" in md
