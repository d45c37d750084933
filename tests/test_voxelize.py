"""Voxelization: counts, majority labels, p2v round trip, determinism, ignore handling."""

from __future__ import annotations

import pytest
import torch

from kdseg import IGNORE_INDEX
from kdseg.voxelize import devoxelize, voxelize, voxelize_batch


def hand_made() -> tuple[torch.Tensor, torch.Tensor]:
    """Three voxels of 1 m: A at (0,0,0) with 3 points, B at (2,0,0) with 2, C at (0,0,5) with 1."""
    points = torch.tensor(
        [
            [0.1, 0.1, 0.1, 1.0],  # A
            [2.5, 0.5, 0.5, 2.0],  # B
            [0.9, 0.2, 0.3, 3.0],  # A
            [0.5, 0.5, 5.5, 4.0],  # C
            [0.4, 0.8, 0.9, 5.0],  # A
            [2.1, 0.1, 0.9, 6.0],  # B
        ]
    )
    labels = torch.tensor([3, IGNORE_INDEX, 1, IGNORE_INDEX, 3, 2])
    return points, labels


def test_counts_coords_and_mean_features() -> None:
    points, labels = hand_made()
    vox = voxelize(points, 1.0, batch_index=1, labels=labels, num_classes=4)
    assert vox.coords.dtype == torch.int32
    assert vox.coords.tolist() == [[1, 0, 0, 0], [1, 0, 0, 5], [1, 2, 0, 0]]
    assert vox.p2v.tolist() == [0, 2, 0, 1, 0, 2]
    torch.testing.assert_close(vox.feats[0], points[[0, 2, 4]].mean(dim=0))
    torch.testing.assert_close(vox.feats[2], points[[1, 5]].mean(dim=0))


def test_majority_labels_and_ignore() -> None:
    points, labels = hand_made()
    vox = voxelize(points, 1.0, labels=labels, num_classes=4)
    # A: votes 3, 1, 3 -> 3; C: only ignored points -> ignore; B: ignored + 2 -> 2.
    assert vox.labels is not None
    assert vox.labels.tolist() == [3, IGNORE_INDEX, 2]


def test_majority_tie_goes_to_smallest_class() -> None:
    points = torch.tensor([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2]])
    vox = voxelize(points, 1.0, labels=torch.tensor([5, 2]), num_classes=6)
    assert vox.labels is not None and vox.labels.tolist() == [2]


def test_shift_to_non_negative_and_origin() -> None:
    points = torch.tensor([[-3.2, -0.1, 7.0], [1.0, 2.0, 9.9]])
    vox = voxelize(points, (0.5, 1.0, 2.0))
    assert vox.origin.tolist() == [-7, -1, 3]
    assert int(vox.coords[:, 1:].min()) == 0
    unshifted = vox.coords[vox.p2v, 1:].long() + vox.origin
    expected = torch.floor(points / torch.tensor([0.5, 1.0, 2.0])).long()
    assert torch.equal(unshifted, expected)


def test_p2v_round_trip_and_determinism() -> None:
    g = torch.Generator().manual_seed(0)
    points = torch.rand(2000, 4, generator=g) * 10
    vox = voxelize(points, 0.7)
    # every point lies in the voxel it maps to
    cell = torch.floor(points[:, :3] / 0.7).long() - vox.origin
    assert torch.equal(vox.coords[vox.p2v, 1:].long(), cell)
    # devoxelizing the voxel means and re-voxelizing gives the same means
    back = devoxelize(vox.feats, vox.p2v)
    assert back.shape == points.shape
    again = voxelize(points, 0.7)
    assert torch.equal(again.coords, vox.coords) and torch.equal(again.p2v, vox.p2v)
    # independent of point order
    perm = torch.randperm(points.shape[0], generator=g)
    shuffled = voxelize(points[perm], 0.7)
    assert torch.equal(shuffled.coords, vox.coords)
    torch.testing.assert_close(shuffled.feats, vox.feats)
    assert torch.equal(shuffled.p2v, vox.p2v[perm])


def test_batch_offsets_and_devoxelize() -> None:
    a = torch.rand(300, 4) * 5
    b = torch.rand(200, 4) * 5 + 100.0
    la = torch.randint(0, 3, (300,))
    lb = torch.full((200,), IGNORE_INDEX)
    batch = voxelize_batch([a, b], 0.5, labels=[la, lb], num_classes=3)
    va, vb = voxelize(a, 0.5), voxelize(b, 0.5)
    assert batch.point_offsets.tolist() == [0, 300, 500]
    assert batch.voxel_offsets.tolist() == [
        0,
        va.coords.shape[0],
        va.coords.shape[0] + vb.coords.shape[0],
    ]
    assert batch.tensor.coords[:, 0].bincount().tolist() == [va.coords.shape[0], vb.coords.shape[0]]
    # per-sample shift: the far-away cloud b starts at 0 too
    assert int(batch.tensor.coords[batch.voxel_offsets[1] :, 1:].min()) == 0
    point_feats = devoxelize(batch.tensor.feats, batch.p2v)
    torch.testing.assert_close(point_feats[300:], devoxelize(vb.feats, vb.p2v))
    assert batch.labels is not None
    assert (batch.labels[batch.voxel_offsets[1] :] == IGNORE_INDEX).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"points": torch.zeros(4, 2)}, "float \\(N, D>=3\\)"),
        ({"points": torch.tensor([[0.0, float("nan"), 0.0]])}, "NaN"),
        ({"voxel_size": 0.0}, "voxel_size must be a positive float"),
        ({"labels": torch.tensor([0, 7])}, r"outside 0\.\.2"),
        ({"labels": torch.tensor([0, 1], dtype=torch.int32)}, "int64"),
        ({"points": torch.tensor([[0.0, 0, 0], [1e5, 0, 0]])}, "key budget"),
    ],
)
def test_bad_input(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"points": torch.zeros(2, 3), "voxel_size": 0.1, "num_classes": 3}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        voxelize(**args)  # type: ignore[arg-type]


def test_devoxelize_checks_indices() -> None:
    with pytest.raises(ValueError, match=r"indexes voxels 0\.\.3 but there are 2"):
        devoxelize(torch.zeros(2, 3), torch.tensor([0, 3]))
