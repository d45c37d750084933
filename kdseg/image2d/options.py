"""Options of the 2D teacher: one frozen dataclass, every field with a help text.

Tags in the help: [DESIGN] where the IGNet paper (no public code) is silent and the value is our
choice; [CBST] / [DAFormer] where the choice follows those self-training methods.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from kdseg.errors import ConfigError
from kdseg.options import build, helps, option

from .data import AugmentConfig
from .model import MODELS, STRIDE

ADAPTATIONS: tuple[str, ...] = ("none", "self_training")

#: Option overrides per run scale (:meth:`TeacherOptions.for_scale`).
SCALE_OVERRIDES: dict[str, dict[str, Any]] = {
    # every code path in a few seconds on the smoke data (160x48 images)
    "smoke": {
        "feature_dim": 16,
        "source_iters": 4,
        "adapt_iters": 3,
        "batch_size": 2,
        "crop_height": 32,
        "crop_width": 64,
        "threshold_refresh": 2,
    },
    # the default data's 240 x 72 camera images: crops of 64 x 128, a schedule twice the
    # option defaults (source 1600, adaptation 800 steps: 25.4 -> 32.3 mIoU, docs/teacher2d.md)
    "default": {
        "crop_height": 64,
        "crop_width": 128,
        "source_iters": 1600,
        "adapt_iters": 800,
    },
    # a larger network and schedule for real data on a GPU [DESIGN]
    "paper": {
        "arch": "small_fpn",
        "feature_dim": 64,
        "source_iters": 8000,
        "adapt_iters": 4000,
        "crop_height": 256,
        "crop_width": 512,
        "ema_momentum": 0.999,
        "threshold_refresh": 500,
    },
}


_f = option  # every field with its help text (kdseg.options)


@dataclass(frozen=True)
class TeacherOptions:
    """How the 2D teacher is built, trained on the source domain and adapted to the target."""

    seed: int = _f(0, "seed of initialisation, batch sampling and augmentation")
    arch: str = _f("tiny_fpn", "2D network (registry name in kdseg.image2d.model.MODELS)")
    feature_dim: int = _f(48, "C, channels of the decoder features at 1/4 resolution [DESIGN]")
    source_iters: int = _f(800, "optimizer steps of supervised training on the source images")
    batch_size: int = _f(8, "images per batch (source and target each)")
    lr: float = _f(2e-3, "AdamW learning rate of source training, poly(0.9) decay [DESIGN]")
    weight_decay: float = _f(1e-4, "AdamW weight decay")
    crop_height: int = _f(128, "training crop height, pixels (multiple of 16)")
    crop_width: int = _f(256, "training crop width, pixels (multiple of 16)")
    scale_min: float = _f(0.75, "random rescale factor lower bound (before cropping)")
    scale_max: float = _f(1.5, "random rescale factor upper bound")
    flip_prob: float = _f(0.5, "probability of a horizontal flip")
    brightness: float = _f(0.3, "colour jitter: brightness factor drawn from U(1-a, 1+a)")
    contrast: float = _f(0.3, "colour jitter: contrast factor drawn from U(1-a, 1+a)")
    saturation: float = _f(0.3, "colour jitter: saturation factor drawn from U(1-a, 1+a)")
    channel_gain: float = _f(0.15, "colour jitter: per-RGB-channel gain from U(1-g, 1+g) [DESIGN]")
    adaptation: str = _f(
        "self_training",
        "unsupervised adaptation to the target camera: 'none' or 'self_training' (EMA-teacher "
        "self-training with class-wise confidence thresholds, CBST/DAFormer-style)",
    )
    adapt_iters: int = _f(400, "optimizer steps of self-training on target images [DESIGN]")
    adapt_lr: float = _f(1e-3, "AdamW learning rate during adaptation, poly(0.9) decay [DESIGN]")
    ema_momentum: float = _f(0.99, "EMA teacher momentum per step [DAFormer: 0.999, shorter here]")
    pseudo_top_p: float = _f(
        0.5,
        "class-wise threshold: pixels of the p most confident fraction of each class's teacher "
        "predictions on the target training images get a pseudo-label [CBST p]",
    )
    threshold_max: float = _f(
        0.9, "cap on every class threshold: a pixel this confident always counts [DESIGN]"
    )
    threshold_refresh: int = _f(
        100, "steps between recomputations of the class thresholds with the EMA teacher [DESIGN]"
    )
    pseudo_weight: float = _f(1.0, "weight of the target pseudo-label CE loss")
    source_weight: float = _f(
        1.0, "weight of the source CE loss kept during adaptation [DAFormer: 1]"
    )
    student_jitter: bool = _f(
        True, "colour-jitter the student's target input (the EMA teacher sees the clean crop)"
    )
    eval_batch: int = _f(8, "images per forward pass at evaluation and feature extraction")

    def __post_init__(self) -> None:
        if self.arch not in MODELS:
            raise ConfigError("arch", f"unknown network {self.arch!r}; known {sorted(MODELS)}")
        if self.adaptation not in ADAPTATIONS:
            raise ConfigError(
                "adaptation", f"must be one of {ADAPTATIONS}, got {self.adaptation!r}"
            )
        for key in ("feature_dim", "batch_size", "crop_height", "crop_width", "eval_batch"):
            if getattr(self, key) < 1:
                raise ConfigError(key, f"must be >= 1, got {getattr(self, key)}")
        for key in ("source_iters", "adapt_iters"):
            if getattr(self, key) < 0:
                raise ConfigError(key, f"must be >= 0, got {getattr(self, key)}")
        for key in ("crop_height", "crop_width"):
            if getattr(self, key) % STRIDE:
                raise ConfigError(key, f"must be a multiple of {STRIDE}, got {getattr(self, key)}")
        if not 0 < self.scale_min <= self.scale_max:
            raise ConfigError("scale_min", "need 0 < scale_min <= scale_max")
        if not 0 < self.pseudo_top_p <= 1:
            raise ConfigError("pseudo_top_p", f"must be in (0, 1], got {self.pseudo_top_p}")
        if not 0 <= self.ema_momentum <= 1:
            raise ConfigError("ema_momentum", f"must be in [0, 1], got {self.ema_momentum}")
        if self.threshold_refresh < 1:
            raise ConfigError("threshold_refresh", "must be >= 1")
        for key in ("lr", "adapt_lr"):
            if not getattr(self, key) > 0:
                raise ConfigError(key, f"must be > 0, got {getattr(self, key)}")

    @classmethod
    def for_scale(cls, scale: str, **overrides: Any) -> TeacherOptions:
        """The options of a run scale (``smoke``, ``default``, ``paper``) with ``overrides``.

        Raises:
            ConfigError: ``scale`` is unknown, or an override key is not an option.
        """
        if scale not in SCALE_OVERRIDES:
            raise ConfigError("scale", f"unknown scale {scale!r}; known {sorted(SCALE_OVERRIDES)}")
        return cls.from_dict({**SCALE_OVERRIDES[scale], **overrides})

    def augment(self) -> AugmentConfig:
        """The augmentation part of the options."""
        names = {f.name for f in dataclasses.fields(AugmentConfig)}
        return AugmentConfig(**{k: v for k, v in self.to_dict().items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every option."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TeacherOptions:
        """Build from a dict; an unknown key or a value of the wrong type raises
        :class:`ConfigError` naming it (:func:`kdseg.options.build`)."""
        return build(cls, values, what="2D teacher option")

    @staticmethod
    def help() -> dict[str, str]:
        """``{option: help text}``."""
        return helps(TeacherOptions)
