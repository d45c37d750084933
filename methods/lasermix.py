"""LaserMix (Kong et al., CVPR 2023): mix labelled and unlabelled scans by laser inclination.

As in LaserMix's MMDetection3D implementation [CODE]: the inclination φ = atan2(z, √(x²+y²)) is
clamped to [-25°, 3°] and cut into N equal areas, N ~ U{3, 4, 5, 6} for MinkUNet; two mixed
scans alternate areas of the labelled scan (ground truth) and the unlabelled scan (EMA-teacher
pseudo-labels with confidence >= 0.9); the student is trained on both mixes with the same
supervised loss as on the labelled scan (the decode head's loss: CE, plus Lovász when the scale
uses it), plus that supervised loss on the labelled scan and the Mean Teacher consistency
(weight 200). Forward passes per iteration, as in the reference: the teacher on the labelled and
unlabelled scans (targets and pseudo-labels), the student on the labelled, unlabelled and mixed
scans (batched into one pass here; the reference makes three, so BatchNorm sees the three groups
together here).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from kdseg.lidar_data import Cloud, LidarBatch
from kdseg.losses import confident_pseudo_labels

from .base import option, register_method
from .mean_teacher import MeanTeacher, MeanTeacherOptions


@dataclasses.dataclass(frozen=True)
class LaserMixOptions(MeanTeacherOptions):
    pitch_min_deg: float = option(-25.0, "lower clamp of the inclination, degrees [CODE]")
    pitch_max_deg: float = option(3.0, "upper clamp of the inclination, degrees [CODE]")
    num_areas_min: int = option(3, "smallest number of inclination areas [CODE MinkUNet: 3]")
    num_areas_max: int = option(6, "largest number of inclination areas [CODE MinkUNet: 6]")
    pseudo_threshold: float = option(0.9, "teacher confidence for a pseudo-label [CODE]")
    mix_weight: float = option(
        1.0,
        "weight of the mixed scans' loss, the same supervised loss as the labelled term (CE, "
        "plus Lovász when lovasz_weight > 0) [CODE unsup_weight 1, decode_head.loss_by_feat]",
    )


def inclination_areas(
    points: torch.Tensor, num_areas: int, lo_deg: float, hi_deg: float
) -> torch.Tensor:
    """Area index ``(N,)`` in ``[0, num_areas)`` of each point by its clamped inclination."""
    pitch = torch.atan2(points[:, 2], torch.linalg.vector_norm(points[:, :2], dim=1))
    lo, hi = math.radians(lo_deg), math.radians(hi_deg)
    frac = (pitch.clamp(lo, hi) - lo) / (hi - lo)
    return (frac * num_areas).long().clamp_(max=num_areas - 1)


def laser_mix(
    a: Cloud, b: Cloud, num_areas: int, lo_deg: float, hi_deg: float
) -> tuple[Cloud, Cloud]:
    """Two mixes: even areas from ``a`` + odd from ``b``, and the complement."""
    area_a = inclination_areas(a.points, num_areas, lo_deg, hi_deg) % 2
    area_b = inclination_areas(b.points, num_areas, lo_deg, hi_deg) % 2
    mixes = []
    for parity in (0, 1):
        ka, kb = area_a == parity, area_b != parity
        mixes.append(
            Cloud(
                torch.cat([a.points[ka], b.points[kb]]),
                torch.cat([a.labels[ka], b.labels[kb]]),
                a.frame,
            )
        )
    return mixes[0], mixes[1]


@register_method("lasermix")
class LaserMix(MeanTeacher):
    """Mean Teacher + inclination mixing of labelled and pseudo-labelled scans."""

    Options = LaserMixOptions
    opts: LaserMixOptions

    def training_step(self, batch: LidarBatch, step: int) -> dict[str, torch.Tensor]:
        o = self.opts
        if self.teacher is None:
            raise RuntimeError("lasermix needs the Trainer's EMA teacher (teacher_spec)")
        with torch.no_grad():
            t_out = self.teacher([c.points for c in batch.labelled + batch.unlabelled])
        t_logits = t_out.split(t_out.logits)
        n_lab = len(batch.labelled)
        pseudo = [
            Cloud(
                c.points, confident_pseudo_labels(t_logits[n_lab + i], o.pseudo_threshold), c.frame
            )
            for i, c in enumerate(batch.unlabelled)
        ]
        mixes: list[Cloud] = []
        for i, unl in enumerate(pseudo):
            num = int(torch.randint(o.num_areas_min, o.num_areas_max + 1, (1,)))
            mixes.extend(
                laser_mix(batch.labelled[i % n_lab], unl, num, o.pitch_min_deg, o.pitch_max_deg)
            )
        clouds = batch.labelled + batch.unlabelled + mixes
        out = self.student([c.points for c in clouds])
        s_logits = out.split(out.logits)
        labels = torch.cat([c.labels for c in batch.labelled])
        terms = self.supervised(torch.cat(s_logits[:n_lab]), labels)
        n_plain = n_lab + len(batch.unlabelled)
        terms["consistency"] = self.consistency(torch.cat(s_logits[:n_plain]), t_out.logits, step)
        if mixes:
            mix_logits = torch.cat(s_logits[n_plain:])
            mix_labels = torch.cat([m.labels for m in mixes])
            for key, value in self.supervised(mix_logits, mix_labels).items():
                terms[key.replace("sup_", "mix_", 1)] = o.mix_weight * value
        return terms


__all__ = ["LaserMix", "inclination_areas", "laser_mix"]
