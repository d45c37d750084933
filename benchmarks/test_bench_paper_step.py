"""The paper-scale training step of every table-1 method on the CPU, on real SemanticKITTI scans:
the measured basis of the GPU-hours estimate in docs/cluster.md.

A temporary SemanticKITTI root holds the two real scans of ``../shared/realdata`` (sequence 00,
training) and scan 000001 again as sequence 08 (validation), with a grey ``image_2`` per scan so
that IGNet's 2D teacher (a smoke-scale one: the cost depends on the feature shapes, not on their
quality) can cache per-point features. Each method then trains in this process exactly as
``kdseg train --scale paper`` does (MinkUNet-18 at 0.05 m, 2 labelled + 2 unlabelled clouds,
SGD) for 3 iterations, and a tracker hook reads, after every step, the wall time and the sparse
convolution FLOPs counted by :class:`kdseg.sparse.PhaseProfiler` (``2 * pairs * C_in * C_out`` per
forward, twice that per backward). Steps 2 and 3 are reported (the first one warms up).

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_paper_step.py -s`` (74 minutes on the
project's 2 cores on 2026-12-02, shared with other training jobs at a load average of 4-8; set
``KDSEG_BENCH_THREADS`` for another torch thread count, default 2).
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdseg.sparse import PhaseProfiler
from kdseg.tracking.base import NullTracker

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("KDSEG_REALDATA", REPO.parent / "shared" / "realdata"))
KITTI = REALDATA / "semantickitti" / "dataset" / "sequences" / "00"
ITERATIONS = 3
THREADS = int(os.environ.get("KDSEG_BENCH_THREADS", "2"))
RESULTS: dict[str, dict[str, float]] = {}


class StepProbe(NullTracker):
    """A tracker that snapshots the wall clock and the profiler's conv FLOPs at every step."""

    def __init__(self, profiler: PhaseProfiler) -> None:
        self.profiler = profiler
        self.marks: list[tuple[int, float, float]] = []  # (step, seconds, conv flops)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if step is not None and "loss/total" in metrics:
            flops = self.profiler.flops["conv_fwd"] + self.profiler.flops["conv_bwd"]
            self.marks.append((step, time.perf_counter(), flops))


@pytest.fixture(scope="module")
def real_root(tmp_path_factory) -> Path:
    if not (KITTI / "velodyne" / "000001.bin").is_file():
        pytest.skip(f"real SemanticKITTI scans not found under {KITTI}")
    root = tmp_path_factory.mktemp("semantickitti")
    for seq, scans in (("00", ("000000", "000001")), ("08", ("000001",))):
        d = root / "dataset" / "sequences" / seq
        for sub in ("velodyne", "labels", "image_2"):
            (d / sub).mkdir(parents=True)
        for new, scan in enumerate(scans):
            shutil.copy(KITTI / "velodyne" / f"{scan}.bin", d / "velodyne" / f"{new:06d}.bin")
            shutil.copy(KITTI / "labels" / f"{scan}.label", d / "labels" / f"{new:06d}.label")
            grey = np.full((376, 1241, 3), 128, dtype=np.uint8)
            Image.fromarray(grey).save(d / "image_2" / f"{new:06d}.png")
        shutil.copy(KITTI / "calib.txt", d / "calib.txt")
        poses = (KITTI / "poses.txt").read_text().splitlines()[: len(scans)]
        (d / "poses.txt").write_text("\n".join(poses) + "\n")
    return root


@pytest.fixture(scope="module")
def feature_cache(real_root: Path, tmp_path_factory) -> Path:
    """Per-point features of a smoke-scale 2D teacher (trained on smoke synthetic data)."""
    from kdseg.datasets.synthetic_street import StreetConfig, generate

    tmp = tmp_path_factory.mktemp("teacher")
    street = generate(tmp / "street", StreetConfig.for_scale("smoke"))
    kdseg = [sys.executable, "-m", "kdseg.cli"]
    subprocess.run(
        [*kdseg, "teacher", "--data", str(street), "--out", str(tmp), "--scale", "smoke"],
        check=True,
        capture_output=True,
    )
    features = tmp / "features"
    teacher = ["--teacher", str(tmp / "teacher.pt"), "--out", str(features)]
    subprocess.run(
        [*kdseg, "features", "--data", str(real_root), *teacher],
        check=True,
        capture_output=True,
    )
    return features


@pytest.mark.parametrize("method", ["sup_only", "mean_teacher", "lasermix", "ignet"])
def test_paper_step_on_real_scans(real_root, feature_cache, tmp_path, method) -> None:
    from kdseg.datasets.splits import draw_split
    from kdseg.run import train_run

    torch.set_num_threads(THREADS)
    split = draw_split(real_root, "semantickitti", "scans-50", seed=0)  # 1 labelled, 1 not
    inputs = {"features_2d": str(feature_cache)} if method == "ignet" else {}
    with PhaseProfiler() as prof:
        probe = StepProbe(prof)
        train_run(
            real_root,
            split,
            method,
            tmp_path / method,
            scale="paper",
            trainer_overrides={
                "iterations": ITERATIONS,
                "warmup_iters": 0,  # the schedule does not change the cost of a step
                "log_every": 1,
                "checkpoint_every": 0,
            },
            tracker=probe,
            inputs=inputs,
        )
    marks = probe.marks
    assert [m[0] for m in marks] == list(range(1, ITERATIONS + 1))
    seconds = [b[1] - a[1] for a, b in itertools.pairwise(marks)]
    gflop = [(b[2] - a[2]) / 1e9 for a, b in itertools.pairwise(marks)]
    RESULTS[method] = {"s_per_step": statistics.mean(seconds), "gflop_per_step": gflop[-1]}
    assert all(g > 0 for g in gflop)
    print(
        f"\n[paper step] {method}: {statistics.mean(seconds):.2f} s per step "
        f"(steps 2-{ITERATIONS}: {', '.join(f'{s:.2f}' for s in seconds)}), sparse conv "
        f"{gflop[-1]:.0f} GFLOP per step, {THREADS} threads, load average "
        f"{os.getloadavg()[0]:.1f}"
    )


def test_paper_batch_on_the_cpu(real_root) -> None:
    """What a paper-scale step spends on the CPU before the network (no DataLoader workers):
    reading 2 + 2 real scans from the page cache (frame cache off), augmenting them, drawing
    LaserMix's batch; ``RESULTS["batch"]``."""
    from kdseg.datasets.splits import draw_split
    from kdseg.lidar_data import FrameStore, LidarBatches

    split = draw_split(real_root, "semantickitti", "scans-50", seed=0)
    batches = LidarBatches(FrameStore(real_root, cache_bytes=0), split, 2, 2, seed=0)
    batches(0)  # warm the page cache
    start = time.perf_counter()
    for step in range(1, 11):
        batches(step)
    per_step = (time.perf_counter() - start) / 10
    RESULTS["batch"] = {"s_per_step": per_step}
    assert per_step > 0
    print(f"\n[paper step] batch of 2 + 2 real scans read and augmented: {1e3 * per_step:.0f} ms")
