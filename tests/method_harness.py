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
from kdseg.methods.base import BaseMethod, build_method, method_class
from kdseg.segmenter import Segmenter, build_segmenter
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


#: the continual 2D family's example: VOC 15-5, step 1 (16 old channels + 5 new), on the small
#: network and 32x32 images
IMAGE_FAMILY = "image_continual"
IMAGE_TASK, IMAGE_STEP, IMAGE_SIZE = ("voc", "15-5"), 1, 32


def _example_network(family: str) -> Any:
    if family == IMAGE_FAMILY:
        from kdseg.continual.segmenter import ImageSegmenter
        from kdseg.datasets.continual import get_task

        task = get_task(*IMAGE_TASK)
        return ImageSegmenter("cseg_tiny", [len(s) for s in task.steps[:IMAGE_STEP]])
    return build_segmenter("minkunet_tiny", NUM_CLASSES)


def example_inputs(cls: type[BaseMethod], tmp: Path) -> dict[str, BoundInput]:
    """Every input ``cls`` requires, from its provider's example (a frozen teacher's stand-in
    is a fresh network of the method's family: ``minkunet_tiny`` for LiDAR methods, the small
    image segmenter with the old classes for continual ones)."""
    ctx = ExampleContext(tmp, NUM_CLASSES, lambda: _example_network(cls.family))
    return {name: provider(name).example(ctx) for name in sorted(cls.requires)}


def example_image_batch(seed: int = 0, size: int = IMAGE_SIZE, batch: int = 2) -> Any:
    """Two normalised random images with step labels (background, a new class of step 1, some
    ignored pixels), as :class:`kdseg.continual.data.ImageBatches` gives them."""
    from kdseg.continual.data import ImageBatch

    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=g)
    pick = torch.tensor([0, 0, 0, 16, 18, IGNORE_INDEX])
    labels = pick[torch.randint(0, len(pick), (batch, size, size), generator=g)]
    return ImageBatch(images, labels)


def example_method(
    name: str, options: Mapping[str, Any] | None = None, tmp: Path | None = None
) -> tuple[BaseMethod, dict[str, BoundInput]]:
    """The method ``name`` with its example inputs and its teacher attached, as a run has it
    (a continual method prepared for step 1 of VOC 15-5, or step 0 when it trains one step)."""
    from kdseg.run import method_options

    cls = method_class(name)
    inputs = example_inputs(cls, tmp or Path("."))
    defaults = {"labelled_per_batch": 1}
    if cls.family == IMAGE_FAMILY:
        defaults = {"backbone": "cseg_tiny", "images_per_batch": 2}
    opts = method_options(cls, {**defaults, **(options or {})}, inputs)
    method = build_method(name, NUM_CLASSES, opts)
    if cls.family == IMAGE_FAMILY:
        from kdseg.continual.step import StepContext
        from kdseg.datasets.continual import get_task

        step = 0 if cls.single_step else IMAGE_STEP
        task = get_task(*IMAGE_TASK) if step else get_task(IMAGE_TASK[0], "offline")
        calibration = [example_image_batch(k) for k in range(2)]
        method.prepare(StepContext(task, step), inputs, lambda: iter(calibration))
    teacher = build_teacher(method.teacher_spec(), method, inputs)
    if teacher is not None:
        attach_teacher(method, teacher.network)
    return method, inputs


def example_batch(method: BaseMethod, inputs: Mapping[str, BoundInput], seed: int = 0) -> Any:
    """A batch of the method's family: synthetic clouds with the extras of ``inputs``, as
    LidarBatches draws it, or an image batch."""
    if method.family == IMAGE_FAMILY:
        return example_image_batch(seed)
    n_lab, n_unl = method.opts.clouds_per_batch
    sampler = SyntheticSampler(list(inputs.values()))
    rng = np.random.default_rng(seed)
    lab = [sampler.draw(sampler.labelled_pool, rng, False) for _ in range(n_lab)]
    unl = [sampler.draw(sampler.unlabelled_pool, rng, True) for _ in range(n_unl)]
    batch = LidarBatch(labelled=lab, unlabelled=unl)
    for bound in inputs.values():
        bound.batch_extras(batch, sampler, rng)
    return batch


def check_inference(method: BaseMethod) -> None:
    """The deployed network of the method's family predicts valid class ids."""
    net = method.inference_network()
    net.eval()
    if method.family == IMAGE_FAMILY:
        from kdseg.continual.segmenter import ImageSegmenter

        assert isinstance(net, ImageSegmenter)
        pred = net.predict(example_image_batch(7).images)
        assert pred.shape == (2, IMAGE_SIZE, IMAGE_SIZE) and pred.dtype == torch.int64
        assert int(pred.min()) >= 0 and int(pred.max()) < net.num_classes
        return
    assert isinstance(net, Segmenter)
    pred = net.predict(synthetic_cloud(7).points)
    assert pred.shape == (1500,) and pred.dtype == torch.int64
    assert int(pred.min()) >= 0 and int(pred.max()) < NUM_CLASSES
