"""Mean Teacher (Tarvainen & Valpola 2017) as configured in LaserMix's benchmark.

Student: supervised loss on labelled points. Teacher: EMA of the student (θ_t ← m·θ_t +
(1-m)·θ_s; LaserMix's ``momentum 0.01`` gives m = 0.99 over its 25k iterations, scaled here so
that the teacher's horizon stays 0.4 % of the run), maintained by the Trainer. Consistency:
MSE between student and teacher softmax outputs on every point of the labelled and unlabelled
clouds, weight 200 (LaserMix's MinkUNet config; 250 for Cylinder3D).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from kdseg.ema import EMA_BUFFERS
from kdseg.errors import ConfigError
from kdseg.lidar_data import LidarBatch
from kdseg.losses import softmax_mse
from kdseg.teachers import TeacherSpec

from .base import Method, Options, option, register_method


@dataclasses.dataclass(frozen=True)
class MeanTeacherOptions(Options):
    unlabelled_per_batch: int | None = option(
        None,
        "unlabelled clouds per iteration; None = as many as labelled_per_batch (LaserMix draws "
        "labelled and unlabelled scans 1:1: MultiSourceSampler source_ratio [1, 1]) [CODE]",
    )
    ema_momentum: float | None = option(
        None,
        "EMA momentum m of the teacher; None = from ema_horizon and the run's length "
        "(1 - 1/(ema_horizon x iterations)); an explicit value wins",
    )
    ema_horizon: float = option(
        0.004,
        "EMA time constant 1/(1 - m) as a fraction of the run: LaserMix's momentum 0.01 per "
        "iteration over its 25k-iteration MinkUNet schedule is a 100-iteration horizon = 0.4 % of "
        "the run [CODE, scaled to the schedule: m = 0.99 at 25k iterations, 0.69 at 800]",
    )
    consistency_weight: float = option(200.0, "weight of the softmax-MSE consistency [CODE]")
    consistency_rampup: float = option(
        0.3,
        "sigmoid ramp-up of the consistency weight over this fraction of the run, "
        "exp(-5 (1 - t)^2) as in Tarvainen & Valpola; 0 = constant [DESIGN for short runs]",
    )
    ema_warmup: bool = option(
        True, "teacher momentum min(1 - 1/(k+1), m) at update k, as SSLSS does [CODE SSLSS]"
    )
    ema_buffers: str = option(
        "own",
        "'own': EMA of parameters only, targets made by the teacher in train mode (batch "
        "statistics) [CODE LaserMix: mmdet3d MeanTeacherHook skip_buffer=True; SSLSS]; 'ema': "
        "EMA of BatchNorm statistics too, targets in eval mode (kdseg before 2026-12-02)",
    )
    predict_on: str = option(
        "teacher",
        "network deployed and reported: 'teacher' [CODE LaserMix semi_test_cfg predict_on; "
        "SSLSS keeps the teacher] or 'student'; both are evaluated and recorded",
    )

    def __post_init__(self) -> None:
        if self.ema_momentum is not None and not 0 <= self.ema_momentum <= 1:
            raise ConfigError("ema_momentum", f"must be in [0, 1] or None, got {self.ema_momentum}")
        if not self.ema_horizon > 0:
            raise ConfigError("ema_horizon", f"must be > 0, got {self.ema_horizon}")
        if self.ema_buffers not in EMA_BUFFERS:
            raise ConfigError(
                "ema_buffers", f"must be one of {EMA_BUFFERS}, got {self.ema_buffers!r}"
            )
        if self.predict_on not in ("teacher", "student"):
            raise ConfigError(
                "predict_on", f"must be 'teacher' or 'student', got {self.predict_on!r}"
            )


@register_method("mean_teacher")
class MeanTeacher(Method):
    """Student trained on labels + consistency with its EMA teacher on all clouds."""

    Options = MeanTeacherOptions
    opts: MeanTeacherOptions

    def ema_momentum(self) -> float:
        """The teacher's momentum: ``ema_momentum`` when set, else ``1 - 1/(ema_horizon x
        iterations)`` (0 for runs shorter than one horizon step)."""
        if self.opts.ema_momentum is not None:
            return self.opts.ema_momentum
        steps = self.opts.ema_horizon * (self.total_iterations or 0)
        return max(0.0, 1.0 - 1.0 / steps) if steps > 0 else 0.0

    def teacher_spec(self) -> TeacherSpec | None:
        """The EMA of the student (momentum, warm-up and buffer semantics from the options)."""
        o = self.opts
        return TeacherSpec(
            "ema",
            {"momentum": self.ema_momentum(), "warmup": o.ema_warmup, "buffers": o.ema_buffers},
        )

    @property
    def deployed(self) -> str:
        """``predict_on`` once the Trainer has attached the teacher, else the student."""
        return self.opts.predict_on if self.teacher is not None else "student"

    def consistency_weight(self, step: int) -> float:
        """The consistency weight at iteration ``step`` (after the sigmoid ramp-up)."""
        ramp = self.opts.consistency_rampup * (self.total_iterations or 0)
        if ramp <= 0:
            return self.opts.consistency_weight
        t = min(step / ramp, 1.0)
        return self.opts.consistency_weight * math.exp(-5.0 * (1.0 - t) ** 2)

    def teacher_logits(self, points: list[torch.Tensor], layout: object = None) -> torch.Tensor:
        """The EMA teacher's logits ``(sum N_b, K)`` on ``points`` (no gradient); ``layout``:
        the student's input layout of the same clouds (built once, reused)."""
        if self.teacher is None:
            raise RuntimeError(f"{self.name} needs the Trainer's EMA teacher (teacher_spec)")
        with torch.no_grad():
            return self.teacher(points, layout=layout).logits

    def consistency(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, step: int
    ) -> torch.Tensor:
        """The consistency term: the ramped weight (:meth:`consistency_weight`) times the MSE of
        the student's and teacher's softmax, both ``(M, K)`` logits of the same points."""
        return self.consistency_weight(step) * softmax_mse(student_logits, teacher_logits)

    def training_step(self, batch: LidarBatch, step: int) -> dict[str, torch.Tensor]:
        clouds = batch.labelled + batch.unlabelled
        points = [c.points for c in clouds]
        if self.teacher is None:
            raise RuntimeError(f"{self.name} needs the Trainer's EMA teacher (teacher_spec)")
        out = self.student(points)
        n_lab = int(out.offsets[len(batch.labelled)])
        labels = torch.cat([c.labels for c in batch.labelled])
        terms = self.supervised(out.logits[:n_lab], labels)
        teacher_logits = self.teacher_logits(points, out.layout)
        terms["consistency"] = self.consistency(out.logits, teacher_logits, step)
        return terms
