"""LiDAR batches: deterministic by (seed, step), labels per budget, augmentation invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdseg import IGNORE_INDEX
from kdseg.budgets import make_split
from kdseg.datasets.splits import split_frames
from kdseg.datasets.synthetic_street import StreetConfig, generate
from kdseg.lidar_data import AugmentConfig, FrameStore, LidarBatches, augment


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("street") / "s", StreetConfig.for_scale("smoke"))


def test_augment_keeps_geometry_and_remission():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(500, 4)).astype(np.float32)
    out = augment(pts, np.random.default_rng(1), AugmentConfig())
    ratio = np.linalg.norm(out[:, :3], axis=1) / np.linalg.norm(pts[:, :3], axis=1)
    assert np.allclose(ratio, ratio[0], rtol=1e-5) and 0.95 <= ratio[0] <= 1.05
    assert np.array_equal(out[:, 3], pts[:, 3])
    assert np.array_equal(out, augment(pts, np.random.default_rng(1), AugmentConfig()))


def test_batches_are_a_function_of_step(root):
    split = make_split("s", split_frames(root, "train"), "scans-50", seed=0)
    make = lambda: LidarBatches(FrameStore(root), split, 1, 1, seed=4)  # noqa: E731
    a, b = make()(7), make()(7)
    assert torch.equal(a.labelled[0].points, b.labelled[0].points)
    assert torch.equal(a.unlabelled[0].points, b.unlabelled[0].points)
    assert not torch.equal(a.labelled[0].points, make()(8).labelled[0].points)
    assert a.labelled[0].frame in split.labelled and a.unlabelled[0].frame in split.unlabelled
    assert (a.unlabelled[0].labels == IGNORE_INDEX).all()
    assert (a.labelled[0].labels != IGNORE_INDEX).any()


def test_scribble_budget_exposes_only_scribbled_points(root):
    split = make_split("s", split_frames(root, "train"), "scribbles", seed=0)
    batch = LidarBatches(FrameStore(root), split, 1, 1, seed=0)(0)
    lab = batch.labelled[0].labels
    share = float((lab != IGNORE_INDEX).float().mean())
    assert 0.0 < share < 0.3, share
    # without unlabelled scans the unlabelled clouds come from the labelled ones, labels hidden
    assert batch.unlabelled[0].frame in split.labelled
    assert (batch.unlabelled[0].labels == IGNORE_INDEX).all()


def test_frame_cache_is_bounded_and_changes_no_frame(root):
    """Frames beyond the cache's byte budget drop the least recently used ones; what a read
    returns is the same with any budget."""
    frames = split_frames(root, "train")[:3]
    unbounded = FrameStore(root)
    one = sum(a.nbytes for a in unbounded.get(frames[0], "labels"))
    small = FrameStore(root, cache_bytes=one)
    for frame in [*frames, frames[0]]:
        for a, b in zip(small.get(frame, "labels"), unbounded.get(frame, "labels"), strict=True):
            assert np.array_equal(a, b)
        (kept,) = small._cache.values()  # one frame fits the budget: only the newest stays
        assert small._cached_bytes == sum(a.nbytes for a in kept)
    assert len(unbounded._cache) == 3
