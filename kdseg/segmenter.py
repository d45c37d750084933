"""The deployed LiDAR network of every method: voxelize -> SegNet -> devoxelize.

Methods train it (and copies of it: EMA teachers, auxiliary heads live outside it); the
evaluator, latency measurement and checkpoints all see exactly this module, so two methods
that deploy the same backbone have the same parameter count and inference cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from kdseg.models import SegNet, build_backbone
from kdseg.voxelize import VoxelizedBatch, devoxelize, voxelize_batch


@dataclass(frozen=True)
class PointOutput:
    """Per-point outputs of a batch of clouds (points concatenated in input order).

    Attributes:
        logits: ``(sum N_b, K)`` class scores.
        feats: ``(sum N_b, C)`` last decoder features (the voxel features of each point's voxel).
        offsets: ``(B + 1,)`` int64: points of cloud ``b`` are ``[offsets[b], offsets[b + 1])``.
        voxels: the voxelized batch (with its kernel-map cache); a network of the same voxel
            size may be run on it again (``forward(clouds, voxels=...)``, e.g. an EMA teacher on
            the student's clouds) without voxelizing or building kernel maps twice.
    """

    logits: torch.Tensor
    feats: torch.Tensor
    offsets: torch.Tensor
    voxels: VoxelizedBatch | None = None

    def split(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Split a per-point tensor back into one tensor per cloud."""
        return list(torch.split(x, torch.diff(self.offsets).tolist()))


class PointSegmenter(nn.Module):
    """Sparse voxel segmentation network with a point-cloud interface.

    Args:
        backbone: registered backbone name (:func:`kdseg.models.list_backbones`).
        num_classes: number of train classes ``K``.
        voxel_size: voxel edge in metres; ``None`` = the backbone's ``default_voxel_size``.
        in_channels: point features fed to the network (x, y, z, remission = 4).
        coord_scale: the x, y, z input features (mean point position of each voxel) are divided
            by this many metres so that they are of order 1 like the remission; voxel
            coordinates are not affected.
    """

    def __init__(
        self,
        backbone: str,
        num_classes: int,
        voxel_size: float | None = None,
        in_channels: int = 4,
        coord_scale: float = 20.0,
    ) -> None:
        super().__init__()
        net = build_backbone(backbone, in_channels=in_channels)
        self.net = SegNet(net, num_classes)
        self.backbone_name = backbone
        self.in_channels = in_channels
        self.voxel_size = float(voxel_size if voxel_size is not None else net.default_voxel_size)
        self.num_classes = num_classes
        if coord_scale <= 0:
            raise ValueError(f"coord_scale must be > 0 metres, got {coord_scale}")
        self.coord_scale = float(coord_scale)

    @property
    def feat_channels(self) -> int:
        """Width ``C`` of :attr:`PointOutput.feats`."""
        return self.net.out_channels

    def forward(
        self, clouds: Sequence[torch.Tensor], voxels: VoxelizedBatch | None = None
    ) -> PointOutput:
        """``clouds``: list of ``(N_b, in_channels)`` float tensors (x, y, z metres, remission).

        ``voxels``: the :attr:`PointOutput.voxels` of an earlier call on the same clouds by a
        network with the same voxel size (reused as is: voxelization and kernel maps are
        deterministic functions of the points).
        """
        if voxels is not None and voxels.voxel_size != self.voxel_size:
            raise ValueError(
                f"voxels were made at {voxels.voxel_size} m, this network uses {self.voxel_size} m"
            )
        vox = voxels or voxelize_batch([c[:, : self.in_channels] for c in clouds], self.voxel_size)
        st = vox.tensor
        scale = torch.ones(st.feats.shape[1], dtype=st.feats.dtype, device=st.feats.device)
        scale[:3] = 1.0 / self.coord_scale
        feats, logits = self.net(st.replace_feats(st.feats * scale))
        return PointOutput(
            logits=devoxelize(logits, vox.p2v),
            feats=devoxelize(feats, vox.p2v),
            offsets=vox.point_offsets,
            voxels=vox,
        )

    @torch.no_grad()
    def predict(self, points: torch.Tensor) -> torch.Tensor:
        """Train-id prediction ``(N,)`` int64 of one cloud ``(N, >=in_channels)``."""
        return self([points]).logits.argmax(dim=1)
