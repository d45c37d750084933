"""Logit distillation from a frozen teacher: the worked example of docs/methods.md."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from kdseg.lidar_data import LidarBatch
from kdseg.methods.base import Method, Options, TeacherSpec, option, register_method


@dataclasses.dataclass(frozen=True)
class LogitKDOptions(Options):
    unlabelled_per_batch: int | None = option(None, "unlabelled clouds per step; None = labelled")
    kd_weight: float = option(1.0, "weight of the distillation term")
    temperature: float = option(2.0, "softmax temperature T of student and teacher")


@register_method("logit_kd")
class LogitKD(Method):
    """Supervised loss + T² KL(teacher || student) of the softened class scores of every point
    (Hinton et al. 2015), the teacher another run's deployed network, frozen."""

    Options = LogitKDOptions
    opts: LogitKDOptions
    requires = frozenset({"teacher_checkpoint"})

    def teacher_spec(self) -> TeacherSpec:
        return TeacherSpec("frozen", {"input": "teacher_checkpoint"})

    def training_step(self, batch: LidarBatch, step: int) -> dict[str, torch.Tensor]:
        points = [c.points for c in batch.labelled + batch.unlabelled]
        out = self.student(points)
        n_lab = int(out.offsets[len(batch.labelled)])
        labels = torch.cat([c.labels for c in batch.labelled])
        terms = self.supervised(out.logits[:n_lab], labels)
        with torch.no_grad():
            target = self.teacher(points).logits  # (sum N_b, K), the teacher's own voxels
        t = self.opts.temperature
        student, teacher = F.log_softmax(out.logits / t, 1), F.log_softmax(target / t, 1)
        kl = F.kl_div(student, teacher, log_target=True, reduction="batchmean")
        terms["kd"] = self.opts.kd_weight * t * t * kl
        return terms
