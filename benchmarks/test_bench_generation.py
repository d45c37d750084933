"""Speed of the synthetic street generator: one frame (LiDAR + camera + scribbles)."""

from __future__ import annotations

import pytest

from kdseg.datasets.synthetic_street import StreetConfig
from kdseg.datasets.synthetic_street.frames import SequenceSimulator


@pytest.mark.parametrize("scale", ["smoke", "default", "full"])
def test_bench_frame(benchmark, scale: str) -> None:
    cfg = StreetConfig.for_scale(scale)
    sim = SequenceSimulator(cfg, "00", cfg.train_frames)
    frame = benchmark(sim.frame, 1)
    assert frame.points.shape[0] > 0
