"""Run scales: how long and how big one training run is.

* ``smoke``: every code path in seconds (tests, CI).
* ``default``: the embedded tables on a 2-core CPU: the range-view ``range_unet_small`` on the
  16 x 256 spherical image of the default synthetic scans, 800 iterations of 8 labelled (and, for
  the semi-supervised methods, 8 unlabelled) scans, AdamW one-cycle to lr 0.02, CE with
  ENet-style class weights plus Lovász-softmax. Chosen so that Sup-only is converged (doubling
  the schedule changes full-budget mIoU by at most a point; the convergence study of
  docs/baselines.md measures it) at the least CPU time among the candidates measured there.
* ``paper``: the papers' schedules on real data and a GPU (LaserMix's MinkUNet-18 recipe:
  SGD lr 0.24 Nesterov, weight decay 1e-4, cosine to 1e-5 after a 125-iteration warm-up,
  25k iterations, 2 labelled + 2 unlabelled scans per GPU, 0.05 m voxels).

A scale gives the Trainer settings and method option defaults; a method variant's own options
override the latter.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from kdseg.errors import ConfigError


@dataclass(frozen=True)
class RunScale:
    """Trainer settings and method option defaults of a scale."""

    name: str
    trainer: dict[str, Any]
    method_defaults: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, Any] = field(default_factory=dict)
    """overrides of :class:`kdseg.lidar_data.AugmentConfig`"""
    eval_max_frames: int | None = None
    """validate on at most this many validation frames (evenly spaced); None = all"""
    latency_frames: int = 5
    """validation frames timed for the inference latency"""

    def defaults_for(self, options_cls: type) -> dict[str, Any]:
        """The scale's method defaults that ``options_cls`` (a method's ``Options`` dataclass)
        has: a scale may set an option of one method family (e.g. IGNet's
        ``contrastive_samples``) without giving it to the others."""
        names = {f.name for f in fields(options_cls)}
        return {k: v for k, v in self.method_defaults.items() if k in names}


SCALES: dict[str, RunScale] = {
    "smoke": RunScale(
        name="smoke",
        trainer={
            "iterations": 3,
            "optimizer": "adamw",
            "lr": 2e-3,
            "schedule": "constant",
            "checkpoint_every": 0,
            "log_every": 1,
        },
        # the default scale's network kind on the smoke data's 16 x 256 scans
        method_defaults={
            "backbone": "range_unet_tiny",
            "range_height": 16,
            "range_width": 256,
            "labelled_per_batch": 1,
        },
        eval_max_frames=2,
        latency_frames=1,
    ),
    "default": RunScale(
        name="default",
        trainer={
            "iterations": 800,
            "optimizer": "adamw",
            "lr": 0.02,
            "weight_decay": 1e-2,
            "schedule": "onecycle",
            "warmup_iters": 50,
            "grad_clip": 10.0,
            "checkpoint_every": 200,
            "log_every": 20,
        },
        # [DESIGN for the CPU regime, docs/baselines.md]: a range-view U-Net (LaserMix's range-view
        # rows use FIDNet) on the scans' native 16 x 256 image; batches of 8 scans (2-4x cheaper
        # per scan than single scans on this CPU, and fewer iterations to converge);
        # Lovász-softmax (weight 1, as SSLSS/Cylinder3D) and ENet class weights (rare classes
        # learn within the schedule).
        method_defaults={
            "backbone": "range_unet_small",
            "range_height": 16,
            "range_width": 256,
            "labelled_per_batch": 8,
            "lovasz_weight": 1.0,
            "class_weighting": "enet_log",
            # IGNet: the spec's 4096 InfoNCE samples are ~20 % of a real scan's ~19k in-image
            # points; 256 is the same share of the default scans' ~900 [DESIGN]
            "contrastive_samples": 256,
        },
        eval_max_frames=None,
    ),
    "paper": RunScale(
        name="paper",
        trainer={
            "iterations": 25_000,
            "optimizer": "sgd",
            "lr": 0.24,
            "momentum": 0.9,
            "nesterov": True,
            "weight_decay": 1e-4,
            "schedule": "cosine",
            "warmup_iters": 125,
            "min_lr": 1e-5,
            "checkpoint_every": 1000,
            "log_every": 50,
            "device": "auto",  # the GPU when the job has one (SLURM), else the CPU
        },
        method_defaults={
            "backbone": "minkunet18",
            "voxel_size": 0.05,
            "labelled_per_batch": 2,
            "contrastive_samples": 4096,  # the spec's value for real scans
        },
    ),
}


def get_scale(name: str) -> RunScale:
    """The named :class:`RunScale`; ``ConfigError`` listing the known ones otherwise."""
    if name not in SCALES:
        raise ConfigError("scale", f"unknown scale {name!r}; known: {sorted(SCALES)}")
    return SCALES[name]
