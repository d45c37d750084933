"""The default regime's cost, side by side in one run: a training step of every table-1 method,
a 1-iteration run's fixed cost, and the predicted core-seconds of table 1 (docs/baselines.md).

Every figure comes from real ``kdseg train`` processes at the ``default`` scale (one thread):
``fixed`` = a 1-iteration run from process start to exit (imports, data, one step, evaluation of
every validation scan, parity timing, outputs); ``step(method)`` = (time of an ``N``-iteration
run - ``fixed``) / (N - 1). IGNet trains with a feature cache of a smoke-scale 2D teacher (the
cache's shapes are the default ones; its quality does not change the cost).

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_regime.py -s`` (about 5 minutes). Data:
``$KDSEG_BENCH_DATA`` when set (e.g. ``data/synthetic/default/street`` after a DAG run), else the
default-scale synthetic street data generated into a temporary folder (about 20 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from kdseg.scales import get_scale
from kdseg.workflow import study_jobs

REPO = Path(__file__).resolve().parents[1]
STEP_ITERATIONS = 41
RESULTS: dict[str, float] = {}  # "fixed" and method -> seconds per iteration


@pytest.fixture(scope="module")
def default_data(tmp_path_factory) -> Path:
    given = os.environ.get("KDSEG_BENCH_DATA")
    if given:
        return Path(given)
    from kdseg.datasets.synthetic_street import StreetConfig, generate

    return generate(tmp_path_factory.mktemp("street") / "street", StreetConfig.for_scale("default"))


@pytest.fixture(scope="module")
def feature_cache(default_data: Path, tmp_path_factory) -> Path:
    """Per-point features of a smoke-scale 2D teacher for every frame of the data."""
    tmp = tmp_path_factory.mktemp("teacher")
    kdseg = [sys.executable, "-m", "kdseg.cli"]
    subprocess.run(
        [*kdseg, "teacher", "--data", str(default_data), "--out", str(tmp), "--scale", "smoke"],
        check=True,
        capture_output=True,
    )
    features = tmp / "features"
    subprocess.run(
        [
            *(*kdseg, "features", "--data", str(default_data)),
            *("--teacher", str(tmp / "teacher.pt"), "--out", str(features)),
        ],
        check=True,
        capture_output=True,
    )
    return features


def _run(data: Path, out: Path, method: str, iterations: int, extra: list[str]) -> float:
    """Wall seconds of one `kdseg train` process (start to exit)."""
    cmd = [
        *(sys.executable, "-m", "kdseg.cli", "train", "--data", str(data), "--budget", "full"),
        *("--method", method, "--scale", "default", "--threads", "1", "--out", str(out)),
        *("--trainer", f"iterations={iterations}", "--trainer", "schedule=constant"),
        *("--trainer", "warmup_iters=0", *extra),
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def test_fixed_cost(benchmark, default_data: Path, tmp_path: Path) -> None:
    """A 1-iteration Sup-only run from process start to exit (target: at most 5 s)."""
    runs = iter(range(100))
    benchmark.pedantic(
        lambda: _run(default_data, tmp_path / f"r{next(runs)}", "sup_only", 1, []),
        rounds=3,
        iterations=1,
    )
    RESULTS["fixed"] = benchmark.stats.stats.median


@pytest.mark.parametrize("method", ["sup_only", "mean_teacher", "lasermix", "ignet"])
def test_step_cost(benchmark, default_data: Path, feature_cache: Path, tmp_path, method) -> None:
    """Seconds per training iteration of a method at the default batch composition."""
    if "fixed" not in RESULTS:
        pytest.skip("needs test_fixed_cost first (run the whole file)")
    extra = ["--input", f"features_2d={feature_cache}"] if method == "ignet" else []
    benchmark.pedantic(
        lambda: _run(default_data, tmp_path / "run", method, STEP_ITERATIONS, extra),
        rounds=1,
        iterations=1,
    )
    RESULTS[method] = (benchmark.stats.stats.median - RESULTS["fixed"]) / (STEP_ITERATIONS - 1)
    benchmark.extra_info["seconds_per_iteration"] = RESULTS[method]


def test_predicted_table1() -> None:
    """Table 1's training core-seconds from the measured fixed cost and steps."""
    methods = ("sup_only", "mean_teacher", "lasermix", "ignet")
    if any(m not in RESULTS for m in ("fixed", *methods)):
        pytest.skip("run the whole file: the prediction needs every measurement")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["scale"] = "default"
    jobs = study_jobs(config, "table1")
    iterations = get_scale("default").trainer["iterations"]
    method_of = {j.variant: config["variants"][j.variant]["method"] for j in jobs}
    per_run = {m: RESULTS["fixed"] + iterations * RESULTS[m] for m in methods}
    total = sum(per_run[method_of[j.variant]] for j in jobs)
    print(f"\n1-iteration run, process start to exit: {RESULTS['fixed']:.2f} s")
    for m in methods:
        ratio = RESULTS[m] / RESULTS["sup_only"]
        print(
            f"{m}: {1000 * RESULTS[m]:.0f} ms per iteration ({ratio:.2f}x Sup-only); a run of "
            f"{iterations} iterations {per_run[m]:.0f} s"
        )
    print(
        f"table 1: {len(jobs)} runs, {total:.0f} core-seconds of training runs = "
        f"{total / 2 / 60:.1f} min on 2 cores (plus data, splits, the 2D teacher, the report)"
    )
    assert total > 0
