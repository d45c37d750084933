"""IGNet (Unal et al., WACV 2024): 2D feature distillation for weakly/semi-supervised LiDAR
segmentation. No code is public; this follows ``shared/specs/methods.md`` §1.3 (see
``docs/ignet.md``).

Recipe: the Mean Teacher method (student + EMA teacher, softmax-MSE consistency on every point;
``consistency_weight 0`` switches the teacher off) plus, on the points that project into the
camera image (``valid_2d``), with the frozen 2D teacher's cached features ``f2d``:

* a guidance head ``g`` (MLP, training only) on the student's per-point decoder features;
* feature distillation ``L_FD = mean_i ||g(f3d_i) - sg(f2d_i)||²`` (or ``1 - cos``);
* a one-way InfoNCE from 3D anchors ``g(f3d)`` to the stop-gradient 2D embeddings;
* FOVMix: the camera-frustum points of scan A (with their guidance) rotated by a random yaw and
  pasted into scan B in place of B's points in the rotated frustum.

Nothing is added at inference: :meth:`inference_network` is the student alone.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from kdseg.errors import ConfigError
from kdseg.lidar_data import Cloud, LidarBatch
from kdseg.losses import feature_distillation, one_way_info_nce
from kdseg.teachers import TeacherSpec

from .base import option, register_method
from .mean_teacher import MeanTeacher, MeanTeacherOptions

FEATURES_2D = "features_2d"  # the input: extras features_2d (N, C), valid_2d (N,), pred_2d (N,)
MIX_PARTNERS = "mix_partners"  # the input: extras["partner"], another scan

FD_LOSSES = ("mse", "cosine")


@dataclasses.dataclass(frozen=True)
class IGNetOptions(MeanTeacherOptions):
    feature_dim_2d: int = option(
        48,
        "C, width of the 2D teacher features (the run sets it from the feature cache's "
        "manifest) [CODE kdseg.image2d tiny_fpn default]",
    )
    head_hidden: int = option(
        64, "hidden width of the guidance MLP g (Linear-LayerNorm-ReLU-Linear); 0 = linear [DESIGN]"
    )
    fd_weight: float = option(1.0, "weight of the feature distillation L_FD; 0 = off [DESIGN]")
    fd_loss: str = option(
        "cosine",
        "L_FD form: 'cosine' (1 - cos, independent of the 2D features' scale) or 'mse' (the "
        "spec's squared L2 per point; with the tiny_fpn teacher it starts near 60 and swamps "
        "the supervised loss, docs/ignet.md) [DESIGN]",
    )
    contrastive_weight: float = option(
        0.1, "weight of the one-way 3D->2D InfoNCE; 0 = off [DESIGN]"
    )
    temperature: float = option(0.07, "InfoNCE temperature tau [DESIGN]")
    contrastive_samples: int = option(
        1024,
        "B: at most this many in-image points per cloud enter the InfoNCE (the spec suggests "
        "4096 for real scans; the (B, B) similarity matrix dominates a CPU step) [DESIGN]",
    )
    class_aware: bool = option(
        False, "InfoNCE positives = every sampled point of the same 2D-predicted class [DESIGN]"
    )
    fovmix_prob: float = option(
        0.5, "probability that a cloud is replaced by its FOVMix with a partner; 0 = off [DESIGN]"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = {
            "fd_loss": (self.fd_loss in FD_LOSSES, f"must be one of {FD_LOSSES}"),
            "fovmix_prob": (0.0 <= self.fovmix_prob <= 1.0, "must be in [0, 1]"),
            "temperature": (self.temperature > 0, "must be > 0"),
            "contrastive_samples": (self.contrastive_samples >= 2, "must be >= 2"),
            "feature_dim_2d": (self.feature_dim_2d >= 1, "must be >= 1"),
            "head_hidden": (self.head_hidden >= 0, "must be >= 0"),
            "fd_weight": (self.fd_weight >= 0, "must be >= 0"),
            "contrastive_weight": (self.contrastive_weight >= 0, "must be >= 0"),
            "consistency_weight": (self.consistency_weight >= 0, "must be >= 0"),
        }
        for key, (ok, problem) in checks.items():
            if not ok:
                raise ConfigError(f"ignet.{key}", f"{problem}, got {getattr(self, key)!r}")


def guidance_head(in_channels: int, out_channels: int, hidden: int) -> nn.Module:
    """The MLP ``g``: ``(M, in_channels) -> (M, out_channels)``; linear when ``hidden == 0``."""
    if hidden == 0:
        return nn.Linear(in_channels, out_channels)
    return nn.Sequential(
        nn.Linear(in_channels, hidden),
        nn.LayerNorm(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out_channels),
    )


# ----------------------------------------------------------------------------------- FOVMix
@dataclasses.dataclass(frozen=True)
class Frustum:
    """The camera frustum of a scan as seen from the LiDAR: an azimuth sector (centre
    ``azimuth`` ± ``half_width``, radians, counter-clockwise from +x) times an elevation band
    ``[elev_min, elev_max]`` (radians, ``atan2(z, √(x²+y²))``)."""

    azimuth: float
    half_width: float
    elev_min: float
    elev_max: float

    def rotated(self, theta: float) -> Frustum:
        """The frustum after a yaw rotation by ``theta`` radians (counter-clockwise)."""
        return dataclasses.replace(self, azimuth=self.azimuth + theta)


def _wrap(angle: torch.Tensor) -> torch.Tensor:
    """Angles wrapped to ``[-π, π)``."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def _angles(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(azimuth (N,), elevation (N,))`` of ``points (N, >=3)``, radians."""
    xy = points[:, :2].double()
    azimuth = torch.atan2(xy[:, 1], xy[:, 0])
    elevation = torch.atan2(points[:, 2].double(), torch.linalg.vector_norm(xy, dim=1))
    return azimuth, elevation


def camera_frustum(points: torch.Tensor, valid: torch.Tensor) -> Frustum | None:
    """The smallest sector × band holding the ``valid`` points (``None`` if there are none).

    The sector is the circle minus the largest azimuth gap between valid points, so it is found
    wherever augmentation (rotation, flips) has moved the camera's field of view, ±π included.
    """
    if not bool(valid.any()):
        return None
    azimuth, elevation = _angles(points[valid])
    ordered = torch.sort(azimuth).values
    gaps = torch.diff(ordered, append=ordered[:1] + 2 * math.pi)  # gap after each azimuth
    k = int(gaps.argmax())
    half = (2 * math.pi - float(gaps[k])) / 2
    start = float(ordered[(k + 1) % ordered.shape[0]])
    centre = float(_wrap(torch.tensor(start + half, dtype=torch.float64)))
    return Frustum(centre, half, float(elevation.min()), float(elevation.max()))


def in_frustum(points: torch.Tensor, frustum: Frustum) -> torch.Tensor:
    """``(N,)`` bool: the points whose direction lies in ``frustum``."""
    azimuth, elevation = _angles(points)
    inside = _wrap(azimuth - frustum.azimuth).abs() <= frustum.half_width
    return inside & (elevation >= frustum.elev_min) & (elevation <= frustum.elev_max)


def rotate_z(points: torch.Tensor, theta: float) -> torch.Tensor:
    """``points (N, D)`` with x, y rotated by ``theta`` radians about z (other columns kept)."""
    c, s = math.cos(theta), math.sin(theta)
    out = points.clone()
    x, y = points[:, 0], points[:, 1]
    out[:, 0] = c * x - s * y
    out[:, 1] = s * x + c * y
    return out


def has_guidance(cloud: Cloud) -> bool:
    """Whether the cloud carries the 2D guidance extras (``features_2d`` input)."""
    return "features_2d" in cloud.extras and "valid_2d" in cloud.extras


def fov_mix(a: Cloud, b: Cloud, theta: float) -> Cloud:
    """FOVMix: A's in-image points (with labels and every per-point extra, the guidance
    included) rotated by ``theta`` about z, pasted into B after removing B's points inside A's
    rotated camera frustum.

    Returns a cloud with B's kept points first (in order), then A's pasted points (in order);
    ``frame`` is B's. Both clouds need their guidance; B is returned unchanged when A has no
    in-image point.
    """
    if not (has_guidance(a) and has_guidance(b)):
        raise ValueError(f"fov_mix needs 2D guidance on both clouds ({a.frame}, {b.frame})")
    if a.frame == b.frame:
        raise ValueError(f"fov_mix mixes two different scans, got {a.frame} twice")
    valid_a = a.extras["valid_2d"]
    frustum = camera_frustum(a.points, valid_a)
    if frustum is None:
        return b
    keep = ~in_frustum(b.points, frustum.rotated(theta))
    pasted = a.select(valid_a)
    pasted.points = rotate_z(pasted.points, theta)
    return Cloud.concat([b.select(keep), pasted], b.frame)


# ----------------------------------------------------------------------------------- method
@register_method("ignet")
class IGNet(MeanTeacher):
    """Mean Teacher + 2D feature distillation, one-way contrastive loss and FOVMix."""

    Options = IGNetOptions
    opts: IGNetOptions
    requires = frozenset({FEATURES_2D, MIX_PARTNERS})

    def __init__(self, opts: IGNetOptions, num_classes: int) -> None:
        super().__init__(opts, num_classes)
        self.head = guidance_head(self.student.feat_channels, opts.feature_dim_2d, opts.head_hidden)

    @classmethod
    def options_from_inputs(cls, inputs: dict) -> dict:
        """``feature_dim_2d``: the width of the feature cache."""
        return {"feature_dim_2d": inputs[FEATURES_2D].feature_dim}

    def teacher_spec(self) -> TeacherSpec | None:
        """The EMA teacher exists only while the consistency term is on."""
        return super().teacher_spec() if self.opts.consistency_weight > 0 else None

    def fovmix(self, clouds: list[Cloud]) -> list[Cloud]:
        """Each cloud, with probability ``fovmix_prob``, replaced by ``fov_mix(partner, cloud,
        θ)``, θ ~ U(0, 2π); the partner is the cloud's ``partner``, another scan drawn by the
        data pipeline (``mix_partners``). Draws come from torch's global generator (seeded by
        the Trainer)."""
        out = []
        for cloud in clouds:
            partner = cloud.extras.get("partner")
            if partner is None:
                raise ConfigError(
                    "ignet.fovmix_prob",
                    f"FOVMix needs a partner scan for {cloud.frame} (input {MIX_PARTNERS})",
                )
            if float(torch.rand(())) < self.opts.fovmix_prob:
                theta = 2.0 * math.pi * float(torch.rand(()))
                cloud = fov_mix(partner, cloud, theta)
            out.append(cloud)
        return out

    def contrastive(
        self, g: torch.Tensor, f2d: torch.Tensor, pred: torch.Tensor, counts: list[int]
    ) -> torch.Tensor:
        """One-way InfoNCE per cloud over at most ``contrastive_samples`` of its in-image points
        (drawn with ``torch.randperm``, deterministic given torch's RNG state); the mean over all
        anchors. ``g (M, C)``, ``f2d (M, C)``, ``pred (M,)``: in-image rows of the batch, cloud by
        cloud, ``counts[b]`` rows for cloud ``b``."""
        o = self.opts
        losses, sizes = [], []
        for gb, fb, pb in zip(g.split(counts), f2d.split(counts), pred.split(counts), strict=True):
            n = gb.shape[0]
            if n < 2:
                continue
            if n > o.contrastive_samples:
                pick = torch.randperm(n)[: o.contrastive_samples].to(gb.device)
                gb, fb, pb = gb[pick], fb[pick], pb[pick]
            classes = pb if o.class_aware else None
            losses.append(one_way_info_nce(gb, fb, o.temperature, classes) * gb.shape[0])
            sizes.append(gb.shape[0])
        if not losses:
            return g.sum() * 0.0
        return torch.stack(losses).sum() / sum(sizes)

    def training_step(self, batch: LidarBatch, step: int) -> dict[str, torch.Tensor]:
        o = self.opts
        for cloud in batch.labelled + batch.unlabelled:
            if not has_guidance(cloud):
                raise ConfigError(
                    f"inputs.{FEATURES_2D}",
                    f"ignet needs per-point 2D guidance; cloud {cloud.frame} has none (train "
                    f"with a feature cache: kdseg train --input {FEATURES_2D}=DIR)",
                )
        labelled, unlabelled = list(batch.labelled), list(batch.unlabelled)
        if o.fovmix_prob > 0:
            labelled, unlabelled = self.fovmix(labelled), self.fovmix(unlabelled)
        clouds = labelled + unlabelled
        points = [c.points for c in clouds]
        out = self.student(points)
        n_lab = int(out.offsets[len(labelled)])
        labels = torch.cat([c.labels for c in labelled])
        terms = self.supervised(out.logits[:n_lab], labels)
        if o.consistency_weight > 0:
            teacher_logits = self.teacher_logits(points, out.layout)
            terms["consistency"] = self.consistency(out.logits, teacher_logits, step)
        if o.fd_weight > 0 or o.contrastive_weight > 0:
            valid = torch.cat([c.extras["valid_2d"] for c in clouds])
            f2d = torch.cat([c.extras["features_2d"] for c in clouds])
            if f2d.shape[1] != o.feature_dim_2d:
                raise ConfigError(
                    "ignet.feature_dim_2d",
                    f"is {o.feature_dim_2d} but the 2D features have {f2d.shape[1]} channels",
                )
            g = self.head(out.feats[valid])  # (M, C) for the M in-image points
            if o.fd_weight > 0:
                terms["fd"] = o.fd_weight * feature_distillation(g, f2d[valid], o.fd_loss)
            if o.contrastive_weight > 0:
                pred = torch.cat([c.extras["pred_2d"] for c in clouds])[valid]
                counts = [int(c.extras["valid_2d"].sum()) for c in clouds]
                terms["contrastive"] = o.contrastive_weight * self.contrastive(
                    g, f2d[valid], pred, counts
                )
        return terms


__all__ = [
    "IGNet",
    "IGNetOptions",
    "camera_frustum",
    "fov_mix",
    "has_guidance",
    "in_frustum",
    "rotate_z",
]
