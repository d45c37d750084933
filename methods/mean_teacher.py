"""Mean Teacher (Tarvainen & Valpola 2017) as configured in LaserMix's benchmark.

Student: supervised loss on labelled points. Teacher: EMA of the student (θ_t ← m·θ_t +
(1-m)·θ_s, m = 0.99, i.e. LaserMix's ``momentum 0.01``), maintained by the Trainer. Consistency:
MSE between student and teacher softmax outputs on every point of the labelled and unlabelled
clouds, weight 200 (LaserMix's MinkUNet config; 250 for Cylinder3D).
"""

from __future__ import annotations

import dataclasses

import torch

from kdseg.lidar_data import LidarBatch
from kdseg.losses import softmax_mse

from .base import Method, Options, option, register_method
from .sup_only import supervised_terms


@dataclasses.dataclass(frozen=True)
class MeanTeacherOptions(Options):
    unlabelled_per_batch: int = option(1, "unlabelled clouds per iteration")
    ema_momentum: float = option(0.99, "EMA momentum m of the teacher [CODE LaserMix: 1 - 0.01]")
    consistency_weight: float = option(200.0, "weight of the softmax-MSE consistency [CODE]")


@register_method("mean_teacher")
class MeanTeacher(Method):
    """Student trained on labels + consistency with its EMA teacher on all clouds."""

    Options = MeanTeacherOptions
    opts: MeanTeacherOptions

    @property
    def ema_momentum(self) -> float | None:
        return self.opts.ema_momentum

    def training_step(self, batch: LidarBatch, step: int) -> dict[str, torch.Tensor]:
        if self.teacher is None:
            raise RuntimeError("mean_teacher needs the Trainer's EMA teacher (ema_momentum set)")
        clouds = batch.labelled + batch.unlabelled
        points = [c.points for c in clouds]
        out = self.student(points)
        n_lab = int(out.offsets[len(batch.labelled)])
        labels = torch.cat([c.labels for c in batch.labelled])
        terms = supervised_terms(self.opts, out.logits[:n_lab], labels)
        with torch.no_grad():
            teacher_logits = self.teacher(points).logits
        terms["consistency"] = self.opts.consistency_weight * softmax_mse(
            out.logits, teacher_logits
        )
        return terms
