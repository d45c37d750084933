"""Scoring a LiDAR segmenter on the validation sequences, and its inference parity.

:func:`evaluate_network` fills the suite's one confusion matrix (:mod:`kdseg.evaluator`);
:func:`inference_parity` times the deployed network against a reference network, interleaved.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from kdseg.datasets.lidar_layouts import LidarLayout, open_layout
from kdseg.evaluator import ConfusionMatrix
from kdseg.lidar_data import FrameStore
from kdseg.segmenter import Segmenter


def evaluation_frames(
    data: str | Path | LidarLayout, max_frames: int | None
) -> list[tuple[str, int]]:
    """Validation frames of a layout (a root alone: SemanticKITTI), evenly thinned to
    ``max_frames`` when given."""
    layout = data if isinstance(data, LidarLayout) else open_layout(data)
    frames = layout.split_frames("val")
    if max_frames is not None and len(frames) > max_frames:
        keep = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in keep]
    return frames


def evaluate_network(
    net: Segmenter, store: FrameStore, frames: list[tuple[str, int]]
) -> ConfusionMatrix:
    """Confusion matrix of ``net`` over ``frames`` (dense ground truth, no augmentation)."""
    cm = ConfusionMatrix(len(store.class_names))
    device = next(net.parameters()).device
    for frame in frames:
        points, labels = store.get(frame, "eval")
        pred = net.predict(torch.from_numpy(points).to(device))
        cm.update(pred.cpu().numpy(), labels)
    return cm


def _timed_predict(net: Segmenter, cloud: torch.Tensor) -> float:
    """Wall time (ms) of one ``net.predict(cloud)`` (CUDA synchronised)."""
    cuda = cloud.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    net.predict(cloud)
    if cuda:
        torch.cuda.synchronize()
    return 1000.0 * (time.perf_counter() - t0)


def inference_parity(
    net: Segmenter,
    ref: Segmenter,
    store: FrameStore,
    frames: list[tuple[str, int]],
    repeats: int = 3,
    reference: str = "network spec",
) -> dict[str, float | int | str]:
    """Parameters and latency of ``net`` against the reference network ``ref``.

    ``reference`` says what ``ref`` is (recorded): by default a fresh segmenter of ``net``'s own
    spec (what Sup-only deploys; weights do not change the cost of a network), or the deployed
    network of the method a method class names (``Method.parity_reference``). Both predict
    the same ``frames`` ``repeats`` times, interleaved in this process (which of the two goes
    first alternates from one timed frame to the next), after one warm-up each; latencies are
    medians, in ms.
    """
    device = next(net.parameters()).device
    ref = ref.to(device)
    ref.eval()
    clouds = [torch.from_numpy(store.get(f, "eval")[0]).to(device) for f in frames]
    net.predict(clouds[0])
    ref.predict(clouds[0])
    times: dict[str, list[float]] = {"net": [], "ref": []}
    for k, cloud in enumerate(clouds * repeats):
        order = (("net", net), ("ref", ref)) if k % 2 == 0 else (("ref", ref), ("net", net))
        for name, model in order:
            times[name].append(_timed_predict(model, cloud))
    n = sum(p.numel() for p in net.parameters())
    n0 = sum(p.numel() for p in ref.parameters())
    t, t0 = float(np.median(times["net"])), float(np.median(times["ref"]))
    return {
        "reference": reference,
        "parameters": n,
        "parameters_reference": n0,
        "parameters_ratio": n / n0,
        "latency_ms": t,
        "latency_reference_ms": t0,
        "latency_ratio": t / t0,
        "frames": len(frames),
        "repeats": repeats,
    }
