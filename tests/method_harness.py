"""Synthetic clouds, inputs, teachers and batches for any registered method (test helpers).

A method is built the way a run builds it (:func:`kdseg.run.method_options`: options fixed by
its inputs; :func:`kdseg.teachers.build_teacher`: its teacher), with every input it requires
made by the provider's own :meth:`~kdseg.inputs.InputProvider.example`, so a new method, input
provider or teacher kind is exercised by the registry-parametrized tests without a new helper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdseg import IGNORE_INDEX
from kdseg.ema import attach_teacher
from kdseg.inputs import BoundInput, ExampleContext, provider
from kdseg.inputs.features_2d import example_guidance
from kdseg.lidar_data import Cloud, LidarBatch
from kdseg.methods.base import Method, build_method, method_class
from kdseg.segmenter import build_segmenter
from kdseg.teachers import build_teacher

NUM_CLASSES = 19


def synthetic_cloud(seed: int, n: int = 1500, labelled: bool = True) -> Cloud:
    """A cloud of ``n`` random points 2-30 m around the sensor: road (8) below it, building
    (12) above, 30 % of the labels hidden (all when not ``labelled``); frame ``("00", seed)``."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(2, 30, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    z = rng.uniform(-1.7, 2.0, n)
    pts = np.stack([r * np.cos(phi), r * np.sin(phi), z, rng.uniform(0, 1, n)], 1)
    labels = np.where(z > 0, 12, 8).astype(np.int64)
    if not labelled:
        labels[:] = IGNORE_INDEX
    else:
        labels[rng.random(n) < 0.3] = IGNORE_INDEX
    return Cloud(torch.from_numpy(pts.astype(np.float32)), torch.from_numpy(labels), ("00", seed))


def with_guidance(cloud: Cloud, channels: int, seed: int) -> Cloud:
    """``cloud`` with synthetic 2D guidance (the ``features_2d`` input's example extras)."""
    extras = example_guidance(cloud.points.numpy(), channels, seed)
    cloud.attach(extras, ("features_2d", "valid_2d", "pred_2d"))
    return cloud


class SyntheticSampler:
    """A :class:`kdseg.inputs.BatchSampler` over synthetic frames ``("00", k)``."""

    def __init__(self, inputs: Sequence[BoundInput]) -> None:
        self.inputs = list(inputs)
        self.labelled_pool = [("00", k) for k in range(3)]
        self.unlabelled_pool = [("00", 100 + k) for k in range(3)]

    def draw(self, pool: Sequence[Any], rng: np.random.Generator, hide: bool) -> Cloud:
        frame = pool[int(rng.integers(len(pool)))]
        cloud = synthetic_cloud(int(frame[1]), labelled=not hide)
        for bound in self.inputs:
            extras = bound.cloud_extras(frame, cloud.points.numpy())
            if extras:
                cloud.attach(extras, bound.point_keys)
        return cloud


def example_inputs(cls: type[Method], tmp: Path) -> dict[str, BoundInput]:
    """Every input ``cls`` requires, from its provider's example (a frozen teacher's stand-in
    is a fresh ``minkunet_tiny`` segmenter)."""
    ctx = ExampleContext(tmp, NUM_CLASSES, lambda: build_segmenter("minkunet_tiny", NUM_CLASSES))
    return {name: provider(name).example(ctx) for name in sorted(cls.requires)}


def example_method(
    name: str, options: Mapping[str, Any] | None = None, tmp: Path | None = None
) -> tuple[Method, dict[str, BoundInput]]:
    """The method ``name`` with its example inputs and its teacher attached, as a run has it."""
    from kdseg.run import method_options

    cls = method_class(name)
    inputs = example_inputs(cls, tmp or Path("."))
    opts = method_options(cls, {"labelled_per_batch": 1, **(options or {})}, inputs)
    method = build_method(name, NUM_CLASSES, opts)
    teacher = build_teacher(method.teacher_spec(), method, inputs)
    if teacher is not None:
        attach_teacher(method, teacher.network)
    return method, inputs


def example_batch(method: Method, inputs: Mapping[str, BoundInput], seed: int = 0) -> LidarBatch:
    """A batch of synthetic clouds with the extras of ``inputs``, as LidarBatches draws it."""
    n_lab, n_unl = method.opts.clouds_per_batch
    sampler = SyntheticSampler(list(inputs.values()))
    rng = np.random.default_rng(seed)
    lab = [sampler.draw(sampler.labelled_pool, rng, False) for _ in range(n_lab)]
    unl = [sampler.draw(sampler.unlabelled_pool, rng, True) for _ in range(n_unl)]
    batch = LidarBatch(labelled=lab, unlabelled=unl)
    for bound in inputs.values():
        bound.batch_extras(batch, sampler, rng)
    return batch
