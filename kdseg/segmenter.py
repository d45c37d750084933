"""The deployed LiDAR network of every method: points in, per-point class scores out.

Two implementations share one interface (:class:`Segmenter`):

* :class:`VoxelSegmenter`: voxelize -> sparse U-Net -> linear classifier -> devoxelize;
* :class:`kdseg.range_view.RangeSegmenter`: spherical projection -> 2D U-Net -> 1x1 classifier
  -> each point reads its pixel.

Methods train a segmenter (and copies of it: EMA teachers; auxiliary heads live outside it); the
evaluator, latency measurement and checkpoints all see exactly this module, so two methods that
deploy the same backbone have the same parameter count and inference cost.
:func:`build_segmenter` picks the implementation from the backbone's ``view``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from kdseg.models import SegNet, backbone_view, build_backbone
from kdseg.voxelize import VoxelizedBatch, devoxelize, voxelize_batch


@dataclass(frozen=True)
class PointOutput:
    """Per-point outputs of a batch of clouds (points concatenated in input order).

    Attributes:
        logits: ``(sum N_b, K)`` class scores.
        feats: ``(sum N_b, C)`` last decoder features (of each point's voxel or pixel).
        offsets: ``(B + 1,)`` int64: points of cloud ``b`` are ``[offsets[b], offsets[b + 1])``.
        layout: the network input built from the clouds (a :class:`VoxelizedBatch` with its
            kernel-map cache, or a :class:`kdseg.range_view.RangeLayout`); a segmenter of the
            same geometry may be run on it again (``forward(clouds, layout=...)``, e.g. an EMA
            teacher on the student's clouds) without building it twice.
    """

    logits: torch.Tensor
    feats: torch.Tensor
    offsets: torch.Tensor
    layout: Any = None

    def split(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Split a per-point tensor back into one tensor per cloud."""
        return list(torch.split(x, torch.diff(self.offsets).tolist()))


class Segmenter(nn.Module, abc.ABC):
    """Point-cloud segmentation network: ``forward(clouds) -> PointOutput``.

    Attributes:
        backbone_name, num_classes, in_channels: as given to :func:`build_segmenter`.
    """

    backbone_name: str
    num_classes: int
    in_channels: int

    @property
    @abc.abstractmethod
    def feat_channels(self) -> int:
        """Width ``C`` of :attr:`PointOutput.feats`."""

    @abc.abstractmethod
    def spec(self) -> dict[str, Any]:
        """Keyword arguments of :func:`build_segmenter` that rebuild this architecture."""

    @abc.abstractmethod
    def forward(self, clouds: Sequence[torch.Tensor], layout: Any = None) -> PointOutput:
        """``clouds``: list of ``(N_b, >= in_channels)`` float tensors (x, y, z metres,
        remission). ``layout``: the :attr:`PointOutput.layout` of an earlier call on the same
        clouds by a segmenter of the same geometry (reused as is)."""

    @torch.no_grad()
    def predict(self, points: torch.Tensor) -> torch.Tensor:
        """Train-id prediction ``(N,)`` int64 of one cloud ``(N, >= in_channels)``."""
        return self([points]).logits.argmax(dim=1)


class VoxelSegmenter(Segmenter):
    """Sparse voxel segmentation network with a point-cloud interface.

    Args:
        backbone: registered voxel backbone name (:func:`kdseg.models.list_backbones`).
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
        if net.view != "voxel":
            raise ValueError(
                f"backbone {backbone!r} is a {net.view}-view backbone, not a voxel one"
            )
        self.net = SegNet(net, num_classes)  # type: ignore[arg-type]
        self.backbone_name = backbone
        self.in_channels = in_channels
        self.voxel_size = float(voxel_size if voxel_size is not None else net.default_voxel_size)
        self.num_classes = num_classes
        if coord_scale <= 0:
            raise ValueError(f"coord_scale must be > 0 metres, got {coord_scale}")
        self.coord_scale = float(coord_scale)

    @property
    def feat_channels(self) -> int:
        return self.net.out_channels

    def spec(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone_name,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "voxel_size": self.voxel_size,
            "coord_scale": self.coord_scale,
        }

    def forward(
        self, clouds: Sequence[torch.Tensor], layout: VoxelizedBatch | None = None
    ) -> PointOutput:
        if layout is not None and layout.voxel_size != self.voxel_size:
            raise ValueError(
                f"voxels were made at {layout.voxel_size} m, this network uses {self.voxel_size} m"
            )
        vox = layout or voxelize_batch([c[:, : self.in_channels] for c in clouds], self.voxel_size)
        st = vox.tensor
        scale = torch.ones(st.feats.shape[1], dtype=st.feats.dtype, device=st.feats.device)
        scale[:3] = 1.0 / self.coord_scale
        feats, logits = self.net(st.replace_feats(st.feats * scale))
        return PointOutput(
            logits=devoxelize(logits, vox.p2v),
            feats=devoxelize(feats, vox.p2v),
            offsets=vox.point_offsets,
            layout=vox,
        )


def build_segmenter(
    backbone: str,
    num_classes: int,
    in_channels: int = 4,
    coord_scale: float = 20.0,
    voxel_size: float | None = None,
    range_height: int = 32,
    range_width: int = 512,
    fov_up_deg: float = 3.0,
    fov_down_deg: float = -25.0,
) -> Segmenter:
    """The segmenter of a registered backbone: voxel backbones get a :class:`VoxelSegmenter`
    (``voxel_size``), range backbones a :class:`~kdseg.range_view.RangeSegmenter` (``range_*``,
    ``fov_*``); the other kind's geometry arguments are ignored."""
    if backbone_view(backbone) == "voxel":
        return VoxelSegmenter(backbone, num_classes, voxel_size, in_channels, coord_scale)
    from kdseg.range_view import RangeGeometry, RangeSegmenter

    geometry = RangeGeometry(range_height, range_width, fov_up_deg, fov_down_deg)
    return RangeSegmenter(backbone, num_classes, geometry, in_channels, coord_scale)
