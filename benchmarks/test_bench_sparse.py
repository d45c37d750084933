"""Sparse backend benchmarks: training steps, kernel-map share, GFLOP/s, voxelization rate.

Run: ``.venv/bin/pytest benchmarks/test_bench_sparse.py --benchmark-columns=mean,stddev,rounds``
(add ``-s`` to see the printed summaries). Numbers and their meaning: docs/sparse.md.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch
from conftest import LidarFrame

from kdseg.models import SegNet, build_backbone
from kdseg.sparse import Conv3d, PhaseProfiler, SparseTensor
from kdseg.voxelize import voxelize, voxelize_batch

NUM_CLASSES = 19
# (backbone, voxel size in metres or None for its default_voxel_size, timed rounds)
STEP_CASES = [("minkunet_tiny", None, 5), ("minkunet_small", None, 5), ("minkunet18", 0.05, 2)]


def dense_matmul_gflops(shapes: list[tuple[int, int, int]], repeats: int = 2) -> float:
    """GFLOP/s of dense ``(P, C_in) @ (C_in, C_out)`` matmuls of the given shapes (best of runs)."""
    flops = sum(2.0 * p * ci * co for p, ci, co in shapes)
    operands = [(torch.randn(p, ci), torch.randn(ci, co)) for p, ci, co in set(shapes)]
    by_shape = {(a.shape[0], a.shape[1], b.shape[1]): (a, b) for a, b in operands}
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for shape in shapes:
            a, b = by_shape[shape]
            torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def train_step_fn(name: str, voxel_size: float, points: torch.Tensor) -> Callable[[], None]:
    """A closure running one SGD step (forward, CE loss on random labels, backward, step)."""
    torch.manual_seed(0)
    model = SegNet(build_backbone(name), NUM_CLASSES)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batch = voxelize_batch([points], voxel_size)
    feats, coords = batch.tensor.feats, batch.tensor.coords
    labels = torch.randint(0, NUM_CLASSES, (coords.shape[0],))

    def step() -> None:
        # a fresh tensor (and cache) per step: kernel maps are rebuilt as in training
        _, logits = model(SparseTensor(feats, coords))
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def report_phases(prof: PhaseProfiler, steps: int, extra: dict[str, Any]) -> None:
    """Fill ``extra`` with per-step phase times, kernel-map share and GFLOP/s."""
    kmap, fwd, bwd = (prof.seconds[k] for k in ("kmap", "conv_fwd", "conv_bwd"))
    extra["kmap_ms_per_step"] = round(1e3 * kmap / steps, 1)
    extra["conv_fwd_ms_per_step"] = round(1e3 * fwd / steps, 1)
    extra["conv_bwd_ms_per_step"] = round(1e3 * bwd / steps, 1)
    extra["kmap_share_of_sparse_time"] = round(kmap / (kmap + fwd + bwd), 3)
    extra["sparse_fwd_gflops"] = round(prof.gflops_per_second("conv_fwd"), 1)
    extra["sparse_bwd_gflops"] = round(prof.gflops_per_second("conv_bwd"), 1)
    extra["gflop_per_step"] = round(
        (prof.flops["conv_fwd"] + prof.flops["conv_bwd"]) / steps / 1e9, 1
    )


@pytest.mark.parametrize(("name", "voxel_size", "rounds"), STEP_CASES)
def test_train_step_torch_backend(
    benchmark: Any, lidar_frame: LidarFrame, name: str, voxel_size: float | None, rounds: int
) -> None:
    size = voxel_size if voxel_size is not None else build_backbone(name).default_voxel_size
    step = train_step_fn(name, size, lidar_frame.points)
    step()  # warm-up outside the profiler (allocator, first-call overheads)
    with PhaseProfiler() as prof:
        benchmark.pedantic(step, rounds=rounds, iterations=1, warmup_rounds=0)
    extra = benchmark.extra_info
    extra.update(frame=lidar_frame.name, voxel_size_m=size, threads=torch.get_num_threads())
    extra["voxels"] = int(voxelize(lidar_frame.points, size).coords.shape[0])
    report_phases(prof, rounds, extra)
    shapes = prof.conv_shapes[: len(prof.conv_shapes) // rounds]  # one forward's convs
    extra["dense_matmul_gflops"] = round(dense_matmul_gflops(shapes), 1)
    extra["sparse_fwd_vs_dense"] = round(
        extra["sparse_fwd_gflops"] / extra["dense_matmul_gflops"], 2
    )
    print(f"\n{name} @ {size} m: {extra}")
    assert extra["voxels"] > 0 and prof.flops["conv_fwd"] > 0


@pytest.mark.parametrize(("channels", "threads"), [(32, 1), (32, 2), (96, 2)])
def test_submanifold_layer_fwd_bwd_torch(
    benchmark: Any, lidar_frame: LidarFrame, channels: int, threads: int
) -> None:
    """One 3^3 submanifold conv (fwd + bwd) at 0.05 m, kernel map built once (cached).

    The one-thread case is the like-for-like comparison with spconv's one-thread layer below.
    """
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _layer_benchmark(benchmark, lidar_frame, channels)
    finally:
        torch.set_num_threads(saved)


def _layer_benchmark(benchmark: Any, lidar_frame: LidarFrame, channels: int) -> None:
    vox = voxelize(lidar_frame.points, 0.05)
    torch.manual_seed(0)
    conv = Conv3d(channels, channels)
    x = SparseTensor(torch.randn(vox.coords.shape[0], channels, requires_grad=True), vox.coords)
    conv(x)  # builds and caches the kernel map

    def run() -> None:
        conv(x).feats.sum().backward()

    with PhaseProfiler() as prof:
        benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    extra = benchmark.extra_info
    extra.update(voxels=int(vox.coords.shape[0]), threads=torch.get_num_threads())
    extra["sparse_fwd_gflops"] = round(prof.gflops_per_second("conv_fwd"), 1)
    extra["sparse_bwd_gflops"] = round(prof.gflops_per_second("conv_bwd"), 1)
    extra["dense_matmul_gflops"] = round(dense_matmul_gflops(prof.conv_shapes[:1]), 1)
    print(f"\nsubmanifold {channels}->{channels}: {extra}")


@pytest.mark.parametrize("impl", ["torch", "spconv"])
def test_submanifold_layer_forward_one_thread(
    benchmark: Any, lidar_frame: LidarFrame, impl: str
) -> None:
    """One 3^3 submanifold conv 32 -> 32 at 0.05 m, forward only, one thread, ours vs spconv.

    spconv's CPU path is only correct at one thread, and its backward needs a GPU (it calls
    into CUDA and fails on a machine without one), so the like-for-like comparison is the
    forward. Each call builds its kernel map (spconv keeps no map between tensors).
    """
    if impl == "spconv" and importlib.util.find_spec("spconv") is None:
        pytest.skip("spconv is not installed")
    vox = voxelize(lidar_frame.points, 0.05)
    channels = 32
    torch.manual_seed(0)
    feats = torch.randn(vox.coords.shape[0], channels)
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if impl == "spconv":
            import spconv.pytorch as spconv

            conv = spconv.SubMConv3d(channels, channels, 3, bias=False)
            shape = (vox.coords[:, 1:].max(dim=0).values + 1).tolist()

            def run() -> None:
                with torch.no_grad():
                    conv(spconv.SparseConvTensor(feats, vox.coords, shape, 1))

        else:
            ours = Conv3d(channels, channels)

            def run() -> None:
                with torch.no_grad():
                    ours(SparseTensor(feats, vox.coords))

        benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    finally:
        torch.set_num_threads(saved)
    benchmark.extra_info.update(voxels=int(vox.coords.shape[0]), threads=1, impl=impl)


@pytest.mark.parametrize("voxel_size", [0.05, 0.2])
def test_voxelization_rate(benchmark: Any, lidar_frame: LidarFrame, voxel_size: float) -> None:
    points = lidar_frame.points
    labels = torch.randint(0, NUM_CLASSES, (points.shape[0],))
    result = benchmark.pedantic(
        voxelize,
        args=(points, voxel_size),
        kwargs={"labels": labels, "num_classes": NUM_CLASSES},
        rounds=5,
        iterations=1,
        warmup_rounds=1,
    )
    mean = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        points=int(points.shape[0]),
        voxels=int(result.coords.shape[0]),
        points_per_second=round(points.shape[0] / mean),
    )
    print(f"\nvoxelize @ {voxel_size} m: {benchmark.extra_info}")
