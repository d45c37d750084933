"""Run scales of the continual 2D family: how long each step trains and on what.

A step's schedule is epoch-based as in the official code (every step trains the same number of
passes over its own training images, so a 15-1 step of ~100 images is short and step 0 long):
``iterations = max(min_iterations, ceil(epochs * images / batch))``, with one learning rate for
step 0 (and joint training) and another for the incremental steps.

* ``paper``: MiB/PLOP/LGKD's recipe (``shared/specs/methods.md`` §4.4): DeepLabV3-ResNet101,
  SGD (momentum 0.9, Nesterov, weight decay 1e-4), poly(0.9) per iteration, 512 crops; VOC 30
  epochs per step, lr 0.01 then 0.001, 16 images per batch at step 0 and 24 later (2 GPUs x
  8 / 12); ADE20K 60 epochs, lr 0.02 then 0.002, 12 images per batch (2 x 6).
* ``default``: the CPU table on the embedded 64x64 synthetic VOC images, ``cseg_tiny`` (see
  ``docs/continual.md`` for the measured cost and the checks that the regime means something).
* ``smoke``: every code path in seconds (tests, CI).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kdseg.errors import ConfigError


@dataclass(frozen=True)
class StepSchedule:
    """One kind of step: ``epochs`` passes over its training images at peak ``lr`` with
    ``images_per_batch`` images per iteration, at least ``min_iterations`` iterations; the
    first ``warmup`` fraction of them warms up (the ``onecycle`` schedule's rise)."""

    epochs: float
    lr: float
    images_per_batch: int
    min_iterations: int = 1
    warmup: float = 0.0

    def warmup_iters(self, iterations: int) -> int:
        """Warm-up iterations of a step of ``iterations`` (at least 1 when ``warmup > 0``)."""
        if self.warmup <= 0:
            return 0
        return min(iterations - 1, max(1, round(self.warmup * iterations)))

    def iterations(self, images: int, multiplier: float = 1.0, batch: int | None = None) -> int:
        """Iterations of a step with ``images`` training images (``multiplier`` scales the
        epochs, e.g. 0.5 or 2 for a convergence study; ``batch`` overrides the batch size)."""
        b = batch or self.images_per_batch
        return max(self.min_iterations, math.ceil(self.epochs * multiplier * images / b))


@dataclass(frozen=True)
class ContinualScale:
    """Trainer settings (shared by every step), step schedules per dataset and option defaults."""

    name: str
    trainer: dict[str, Any]
    base: dict[str, StepSchedule]
    """dataset -> schedule of step 0 (and of joint training)"""
    incremental: dict[str, StepSchedule]
    """dataset -> schedule of the steps t >= 1"""
    method_defaults: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, Any] = field(default_factory=dict)
    """overrides of :class:`kdseg.continual.data.ImageAugment`"""
    latency_images: int = 5
    """test images timed (one at a time) for the deployed network's latency"""

    def schedule(self, dataset: str, step: int) -> StepSchedule:
        table = self.base if step == 0 else self.incremental
        if dataset not in table:
            raise ConfigError("dataset", f"scale {self.name!r} has no schedule for {dataset!r}")
        return table[dataset]


_PAPER_TRAINER = {
    "optimizer": "sgd",
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 1e-4,
    "schedule": "poly",
    "poly_power": 0.9,
    "checkpoint_every": 500,
    "log_every": 50,
    "device": "auto",  # the GPU when the job has one (SLURM), else the CPU
}

#: [DESIGN] the CPU scales train the small network from scratch: AdamW (weight decay 1e-2) with a
#: one-cycle schedule (10 % warm-up) learns it within these short schedules (measured on VOC
#: 15-5 step 0: 34.9 mIoU after 1,500 iterations against 30.7 with poly(0.9), docs/continual.md)
_CPU_TRAINER = {**_PAPER_TRAINER, "optimizer": "adamw", "nesterov": False, "weight_decay": 1e-2,
                "schedule": "onecycle", "device": "cpu"}  # fmt: skip

CONTINUAL_SCALES: dict[str, ContinualScale] = {
    "smoke": ContinualScale(
        name="smoke",
        trainer={**_CPU_TRAINER, "checkpoint_every": 0, "log_every": 1},
        base={d: StepSchedule(0.2, 1e-2, 8, 3, 0.1) for d in ("voc", "ade20k")},
        incremental={d: StepSchedule(0.2, 1e-3, 8, 2, 0.1) for d in ("voc", "ade20k")},
        method_defaults={"backbone": "cseg_tiny"},
        augment={"crop_size": 64, "eval_size": None},
        latency_images=1,
    ),
    "default": ContinualScale(
        name="default",
        trainer={**_CPU_TRAINER, "checkpoint_every": 500, "log_every": 25},
        base={d: StepSchedule(16.0, 1e-2, 16, 20, 0.1) for d in ("voc", "ade20k")},
        incremental={d: StepSchedule(10.0, 1e-3, 16, 20, 0.1) for d in ("voc", "ade20k")},
        method_defaults={"backbone": "cseg_tiny"},
        augment={"crop_size": 64, "eval_size": None},
    ),
    "paper": ContinualScale(
        name="paper",
        trainer=_PAPER_TRAINER,
        base={
            "voc": StepSchedule(30.0, 0.01, 16),
            "ade20k": StepSchedule(60.0, 0.02, 12),
        },
        incremental={
            "voc": StepSchedule(30.0, 0.001, 24),
            "ade20k": StepSchedule(60.0, 0.002, 12),
        },
        method_defaults={"backbone": "deeplabv3_resnet101"},
        augment={"crop_size": 512, "eval_size": 512},
    ),
}


def get_continual_scale(name: str) -> ContinualScale:
    """The named scale; ``ConfigError`` listing the known ones otherwise."""
    if name not in CONTINUAL_SCALES:
        raise ConfigError("scale", f"unknown scale {name!r}; known: {sorted(CONTINUAL_SCALES)}")
    return CONTINUAL_SCALES[name]
