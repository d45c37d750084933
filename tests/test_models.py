"""Every registered backbone: forward shapes, finite gradients, deterministic parameter count."""

from __future__ import annotations

import pytest
import torch

from kdseg.errors import ConfigError
from kdseg.models import (
    MinkUNet,
    SegNet,
    backbone_view,
    build_backbone,
    list_backbones,
    register_backbone,
)
from kdseg.segmenter import build_segmenter
from kdseg.voxelize import devoxelize, voxelize_batch

NUM_CLASSES = 5


def small_batch(seed: int) -> list[torch.Tensor]:
    """Two random clouds ``(N, 4)`` (x, y, z in a 6 m box, remission) of 600 and 400 points."""
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(n, 4, generator=g) * torch.tensor([6.0, 6.0, 2.0, 1.0]) for n in (600, 400)]


def test_registry_lists_the_builtin_backbones() -> None:
    assert {"minkunet18", "minkunet_small"} <= set(list_backbones())


POINT_BACKBONES = [n for n in list_backbones() if backbone_view(n) in ("voxel", "range")]
"""Backbones of LiDAR segmenters (image backbones are tested in test_continual_networks.py)."""


@pytest.mark.parametrize("name", POINT_BACKBONES)
def test_forward_backward_and_parameter_count(name: str) -> None:
    """Every registered backbone, through the segmenter every method uses: per-point logits and
    features of the right shapes, finite gradients everywhere, a seed-independent size."""
    torch.manual_seed(0)
    # a voxel size that keeps the test cheap yet deep enough for every stride level
    seg = build_segmenter(name, NUM_CLASSES, voxel_size=0.25, range_height=16, range_width=64)
    clouds = small_batch(0)
    out = seg(clouds)
    n = sum(c.shape[0] for c in clouds)
    assert out.logits.shape == (n, NUM_CLASSES)
    assert out.feats.shape == (n, seg.feat_channels)
    assert out.offsets.tolist() == [0, 600, 1000]
    labels = torch.randint(0, NUM_CLASSES, (n,))
    torch.nn.functional.cross_entropy(out.logits, labels).backward()
    for pname, param in seg.named_parameters():
        assert param.grad is not None, pname
        assert torch.isfinite(param.grad).all(), pname
    count = sum(p.numel() for p in seg.parameters())
    torch.manual_seed(1)
    again = build_segmenter(**seg.spec())
    assert sum(p.numel() for p in again.parameters()) == count
    print(f"{name}: {count} parameters")


def test_sparse_backbones_keep_voxel_order() -> None:
    """A voxel backbone wrapped in SegNet returns one row per input voxel."""
    model = SegNet(build_backbone("minkunet_tiny"), NUM_CLASSES)
    batch = voxelize_batch(small_batch(0), voxel_size=0.25)
    feats, logits = model(batch.tensor)
    v = batch.tensor.coords.shape[0]
    assert feats.shape == (v, model.out_channels) and logits.shape == (v, NUM_CLASSES)
    assert devoxelize(logits, batch.p2v).shape == (1000, NUM_CLASSES)


def test_paper_configurations() -> None:
    big = build_backbone("minkunet18")
    small = build_backbone("minkunet_small")
    assert (big.out_channels, big.default_voxel_size) == (96, 0.05)
    assert (small.out_channels, small.default_voxel_size) == (32, 0.2)
    # MinkUNet-18 of MMDetection3D has about 21.7 M parameters
    assert sum(p.numel() for p in big.parameters()) == 21_721_472


def test_unknown_backbone_lists_known_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown backbone 'resnet9000'.*minkunet18"):
        build_backbone("resnet9000")
    with pytest.raises(ConfigError, match=r"'minkunet18\.width': unknown argument"):
        build_backbone("minkunet18", width=3)
    with pytest.raises(ConfigError, match=r"'minkunet18\.in_channels': expected int, got str"):
        build_backbone("minkunet18", in_channels="4")


def test_registered_backbones_describe_their_arguments() -> None:
    """`kdseg backbones` lists every argument with a default and a help text."""
    from kdseg.models.registry import backbone_options
    from kdseg.options import describe

    for name in list_backbones():
        for doc in describe(backbone_options(name)):
            assert doc.help, (name, doc.name)


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_backbone("minkunet18")(MinkUNet)
    from kdseg.models.minkunet import minkunet18

    assert register_backbone("minkunet18")(minkunet18) is minkunet18  # the same: a no-op


def test_bad_minkunet_config() -> None:
    with pytest.raises(ConfigError, match="decoder_channels"):
        MinkUNet(encoder_channels=(8, 16), decoder_channels=(8,))
    with pytest.raises(ConfigError, match="encoder_blocks"):
        MinkUNet(encoder_channels=(8, 16), decoder_channels=(8, 8), encoder_blocks=(1,))


def test_output_is_per_input_voxel_in_input_order() -> None:
    torch.manual_seed(0)
    model = MinkUNet(4, 8, (8, 8), (8, 8)).eval()
    batch = voxelize_batch(small_batch(1), voxel_size=0.3)
    out = model(batch.tensor)
    assert out.coords is batch.tensor.coords
    with pytest.raises(ValueError, match="built for 4 input channels, got 3"):
        model(batch.tensor.replace_feats(batch.tensor.feats[:, :3]))


def test_segmenter_reuses_voxels_of_an_earlier_call() -> None:
    """A second network on the same clouds may reuse the voxels and kernel maps (EMA teachers)."""
    from kdseg.segmenter import VoxelSegmenter

    g = torch.Generator().manual_seed(3)
    clouds = [torch.rand(400, 4, generator=g) * 20.0 for _ in range(2)]
    student = VoxelSegmenter("minkunet_tiny", 5)
    teacher = VoxelSegmenter("minkunet_tiny", 5).eval()
    out = student(clouds)
    assert out.layout is not None
    maps_before = len(out.layout.tensor.cache.kmaps)
    with torch.no_grad():
        shared = teacher(clouds, layout=out.layout)
        fresh = teacher(clouds)
    assert len(out.layout.tensor.cache.kmaps) == maps_before  # nothing rebuilt
    assert torch.equal(shared.logits, fresh.logits)
    coarse = VoxelSegmenter("minkunet_tiny", 5, voxel_size=0.5)
    with pytest.raises(ValueError, match=r"voxels were made at 0\.3 m"):
        coarse(clouds, layout=out.layout)
