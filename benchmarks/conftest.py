"""Benchmark fixtures: one LiDAR-like frame, chosen by ``KDSEG_BENCH_FRAME``.

Frame sources (a name -> loader table, so adding one is a single entry in ``FRAME_SOURCES``):

* ``synthetic``: scan 0 of sequence 00 of the embedded synthetic street data at the ``full``
  generator scale (simulated on the spot, 64 x 1024 firings, about 59k points; default-scale
  runs train on 32 x 512 scans of the same scenes, about 15k points);
* ``semantickitti``: scan ``00/000000`` of the real sample data, read with
  :func:`kdseg.datasets.semantickitti.read_points` from ``<repo>/../shared/realdata`` (or
  ``$KDSEG_REALDATA``);
* ``procedural``: a deterministic LiDAR-like cloud of about 100k points (rings on a ground plane
  plus a few boxes), no files needed.

``auto`` (the default) takes the first source that is available, in the order above.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from kdseg.datasets.semantickitti import read_points

REPO_ROOT = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("KDSEG_REALDATA", REPO_ROOT.parent / "shared" / "realdata"))
KITTI_SCAN = REALDATA / "semantickitti/dataset/sequences/00/velodyne/000000.bin"


@dataclass(frozen=True)
class LidarFrame:
    """A benchmark frame: ``points`` ``(N, 4)`` float32 x, y, z (metres), remission."""

    name: str
    points: torch.Tensor


def synthetic_frame() -> LidarFrame:
    """Scan 0 of synthetic street sequence 00 at the ``full`` generator scale (64 x 1024
    firings, ~59k points like an HDL-64E scan; the default-scale runs see 32 x 512)."""
    from kdseg.datasets.synthetic_street import StreetConfig
    from kdseg.datasets.synthetic_street.frames import SequenceSimulator

    cfg = StreetConfig.for_scale("full")
    frame = SequenceSimulator(cfg, "00", cfg.train_frames).frame(0)
    return LidarFrame("synthetic street 00/000000 (full scale)", torch.from_numpy(frame.points))


def semantickitti_frame() -> LidarFrame | None:
    """The real scan, or ``None`` when the sample data are absent."""
    if not KITTI_SCAN.is_file():
        return None
    return LidarFrame("semantickitti/00/000000", torch.from_numpy(read_points(KITTI_SCAN)))


def procedural_frame(seed: int = 0) -> LidarFrame:
    """~100k points: 64 ground rings (2048 points each, 3-60 m) plus 6 box surfaces."""
    g = torch.Generator().manual_seed(seed)
    radii = 3.0 * torch.exp(torch.linspace(0.0, math.log(20.0), 64))
    angles = torch.linspace(0.0, 2 * math.pi, 1601)[:-1]
    r = radii[:, None].expand(-1, angles.numel()).reshape(-1)
    a = angles[None, :].expand(radii.numel(), -1).reshape(-1)
    ground = torch.stack(
        [r * torch.cos(a), r * torch.sin(a), -1.7 + 0.02 * torch.randn(r.shape, generator=g)], 1
    )
    boxes = []
    for _ in range(6):
        centre = (torch.rand(3, generator=g) - 0.5) * torch.tensor([60.0, 60.0, 0.0])
        size = torch.rand(3, generator=g) * torch.tensor([4.0, 4.0, 2.0]) + 1.0
        surf = torch.rand(1500, 3, generator=g) - 0.5
        face = torch.randint(0, 3, (1500,), generator=g)
        surf[torch.arange(1500), face] = torch.sign(surf[torch.arange(1500), face]) * 0.5
        boxes.append(
            centre + surf * size + torch.tensor([0.0, 0.0, -1.7]) + size * torch.tensor([0, 0, 0.5])
        )
    xyz = torch.cat([ground, *boxes])
    remission = torch.rand(xyz.shape[0], 1, generator=g)
    return LidarFrame(f"procedural(seed={seed})", torch.cat([xyz, remission], 1).float())


FRAME_SOURCES: dict[str, Callable[[], LidarFrame | None]] = {
    "synthetic": synthetic_frame,
    "semantickitti": semantickitti_frame,
    "procedural": procedural_frame,
}


@pytest.fixture(scope="session")
def lidar_frame() -> LidarFrame:
    """The frame named by ``$KDSEG_BENCH_FRAME`` (default ``auto``)."""
    choice = os.environ.get("KDSEG_BENCH_FRAME", "auto")
    names = list(FRAME_SOURCES) if choice == "auto" else [choice]
    for name in names:
        if name not in FRAME_SOURCES:
            raise pytest.UsageError(
                f"KDSEG_BENCH_FRAME={choice!r}: known sources: auto, {', '.join(FRAME_SOURCES)}"
            )
        frame = FRAME_SOURCES[name]()
        if frame is not None:
            return frame
    pytest.skip(f"frame source {choice!r} is not available here")
