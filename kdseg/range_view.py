"""Range view: the spherical projection of LiDAR clouds into ``H x W`` images, and back.

Convention (RangeNet++ / FIDNet): a point ``(x, y, z)`` at depth ``r = |(x, y, z)|`` falls in
row ``floor((fov_up - pitch) / (fov_up - fov_down) * H)`` with ``pitch = asin(z / r)`` and
column ``floor((1 - yaw / pi) / 2 * W)`` with ``yaw = atan2(y, x)`` (so ``W / 2`` looks along
+x, columns grow clockwise seen from above), both clamped into the image. Where several points
fall in one pixel, the nearest one (then the lowest index) paints it; every point reads its
pixel's outputs back, so per-point losses and predictions cover all points.

This is the LiDAR's own (spherical) projection, distinct from the camera projection
:func:`kdseg.geometry.project_points`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from kdseg.models import build_backbone
from kdseg.segmenter import PointOutput, Segmenter


@dataclass(frozen=True)
class RangeGeometry:
    """Size and vertical field of view of the range image.

    Attributes:
        height, width: image size in pixels (rows = elevation, columns = azimuth).
        fov_up_deg, fov_down_deg: elevation of the top and bottom image edges, degrees.
    """

    height: int
    width: int
    fov_up_deg: float
    fov_down_deg: float

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"range image size must be >= 1, got {self.height}x{self.width}")
        if not self.fov_up_deg > self.fov_down_deg:
            raise ValueError(
                f"fov_up_deg ({self.fov_up_deg}) must exceed fov_down_deg ({self.fov_down_deg})"
            )


@dataclass(frozen=True)
class RangeLayout:
    """A batch of clouds projected into range images (reusable by a network of the same
    geometry and input scaling, e.g. an EMA teacher on the student's clouds).

    Attributes:
        image: ``(B, C_in + 2, H, W)`` float input: depth, x, y, z (divided by ``coord_scale``),
            the remaining point features (remission), then 1 where a point paints the pixel.
        pixel: ``(sum N_b,)`` int64 flat pixel index ``b * H * W + row * W + col`` of each point.
        point_offsets: ``(B + 1,)`` int64: points of cloud ``b`` are ``[off[b], off[b + 1])``.
        geometry: the image geometry.
        coord_scale: metres per unit of the depth and x, y, z input channels.
    """

    image: torch.Tensor
    pixel: torch.Tensor
    point_offsets: torch.Tensor
    geometry: RangeGeometry
    coord_scale: float


def spherical_pixels(
    points: torch.Tensor, geometry: RangeGeometry
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(row (N,), col (N,), depth (N,))`` of ``points (N, >=3)``: int64 pixel indices inside
    the image and float depth in metres (see the module docstring for the convention)."""
    xyz = points[:, :3]
    depth = torch.linalg.vector_norm(xyz, dim=1)
    pitch = torch.asin((xyz[:, 2] / depth.clamp_min(1e-6)).clamp(-1.0, 1.0))
    yaw = torch.atan2(xyz[:, 1], xyz[:, 0])
    up, down = math.radians(geometry.fov_up_deg), math.radians(geometry.fov_down_deg)
    row = torch.floor((up - pitch) / (up - down) * geometry.height)
    col = torch.floor(0.5 * (1.0 - yaw / math.pi) * geometry.width)
    row = row.clamp(0, geometry.height - 1).to(torch.int64)
    col = col.clamp(0, geometry.width - 1).to(torch.int64)
    return row, col, depth


def project_clouds(
    clouds: Sequence[torch.Tensor], geometry: RangeGeometry, coord_scale: float
) -> RangeLayout:
    """Project clouds ``[(N_b, D)]`` (x, y, z metres, then D - 3 features) into one image batch.

    Deterministic: the nearest point of a pixel paints it, ties broken by the lower point index.
    """
    if not clouds:
        raise ValueError("project_clouds: no clouds given")
    h, w = geometry.height, geometry.width
    device = clouds[0].device
    pts = torch.cat(list(clouds))
    counts = torch.tensor([0] + [c.shape[0] for c in clouds], device=device)
    offsets = torch.cumsum(counts, 0)
    batch = torch.repeat_interleave(torch.arange(len(clouds), device=device), counts[1:])
    row, col, depth = spherical_pixels(pts, geometry)
    pixel = batch * (h * w) + row * w + col
    n = pts.shape[0]
    order = torch.argsort(depth, stable=True)  # nearest first; ties keep the point order
    first = torch.full((len(clouds) * h * w,), n, dtype=torch.int64, device=device)
    first.scatter_reduce_(0, pixel[order], torch.arange(n, device=device), reduce="amin")
    painted = first < n
    winners = order[first[painted]]
    feats = torch.cat([depth[:, None] / coord_scale, pts[:, :3] / coord_scale, pts[:, 3:]], dim=1)
    channels = feats.shape[1] + 1
    flat = pts.new_zeros((len(clouds) * h * w, channels))
    flat[pixel[winners], :-1] = feats[winners]
    flat[pixel[winners], -1] = 1.0
    image = flat.view(len(clouds), h, w, channels).permute(0, 3, 1, 2).contiguous()
    return RangeLayout(image, pixel, offsets, geometry, float(coord_scale))


def gather_points(pixel_values: torch.Tensor, layout: RangeLayout) -> torch.Tensor:
    """Per-point rows ``(sum N_b, C)`` of a per-pixel map ``(B, C, H, W)``."""
    c = pixel_values.shape[1]
    flat = pixel_values.permute(0, 2, 3, 1).reshape(-1, c)
    return flat.index_select(0, layout.pixel)


class RangeSegmenter(Segmenter):
    """Range-view segmentation network with a point-cloud interface.

    Args:
        backbone: registered range backbone name (``view == "range"``).
        num_classes: number of train classes ``K``.
        geometry: the range image's size and vertical field of view.
        in_channels: point features used (x, y, z, remission = 4); the image gets depth and an
            occupancy channel on top, so the backbone sees ``in_channels + 2``.
        coord_scale: depth and x, y, z are divided by this many metres (order-1 inputs).
    """

    def __init__(
        self,
        backbone: str,
        num_classes: int,
        geometry: RangeGeometry,
        in_channels: int = 4,
        coord_scale: float = 20.0,
    ) -> None:
        super().__init__()
        if in_channels < 3:
            raise ValueError(f"in_channels must be >= 3 (x, y, z), got {in_channels}")
        if coord_scale <= 0:
            raise ValueError(f"coord_scale must be > 0 metres, got {coord_scale}")
        net = build_backbone(backbone, in_channels=in_channels + 2)
        if net.view != "range":
            raise ValueError(
                f"backbone {backbone!r} is a {net.view}-view backbone, not a range one"
            )
        self.backbone = net
        self.classifier = nn.Conv2d(net.out_channels, num_classes, kernel_size=1)
        self.backbone_name = backbone
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.geometry = geometry
        self.coord_scale = float(coord_scale)

    @property
    def feat_channels(self) -> int:
        return int(self.backbone.out_channels)

    def spec(self) -> dict[str, Any]:
        g = asdict(self.geometry)
        return {
            "backbone": self.backbone_name,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "coord_scale": self.coord_scale,
            "range_height": g["height"],
            "range_width": g["width"],
            "fov_up_deg": g["fov_up_deg"],
            "fov_down_deg": g["fov_down_deg"],
        }

    def forward(
        self, clouds: Sequence[torch.Tensor], layout: RangeLayout | None = None
    ) -> PointOutput:
        if layout is not None and (
            layout.geometry != self.geometry or layout.coord_scale != self.coord_scale
        ):
            raise ValueError(
                f"range layout of {layout.geometry} (coord_scale {layout.coord_scale}) does not "
                f"match this network's {self.geometry} (coord_scale {self.coord_scale})"
            )
        if layout is None:
            layout = project_clouds(
                [c[:, : self.in_channels] for c in clouds], self.geometry, self.coord_scale
            )
        feats = self.backbone(layout.image)
        logits = self.classifier(feats)
        return PointOutput(
            logits=gather_points(logits, layout),
            feats=gather_points(feats, layout),
            offsets=layout.point_offsets,
            layout=layout,
        )
