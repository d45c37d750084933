"""Continual-segmentation networks (kdseg.continual): the registered image backbones, the
ResNet body of MiB/PLOP/LGKD and its weight loading, the ASPP head, the per-step classifier with
MiB's balanced initialisation, the segmenter's POD taps.

``kdseg.continual`` is imported inside the tests (fixture ``cl``), not at collection: importing
it registers image backbones, and tests/test_models.py parametrises over every registered
backbone when it is collected (it builds voxel and range ones only).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kdseg.errors import ConfigError

# one torch thread: on the shared 2-core machine two intra-op threads made a 64x64 forward
# of the small network take 1.2 s instead of 15 ms (measured)
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def cl():
    import kdseg.continual

    return kdseg.continual


def test_image_backbones_are_registered(cl):
    from kdseg.models import backbone_view, build_backbone, list_backbones

    for name in ("deeplabv3_resnet101", "deeplabv3_resnet50", "cseg_tiny"):
        assert name in list_backbones() and backbone_view(name) == "image"
    tiny = build_backbone("cseg_tiny", decoder=False)
    assert isinstance(tiny, cl.TinySegBackbone) and tiny.output_stride == 8
    with pytest.raises(ConfigError, match=r"'cseg_tiny\.depth': unknown argument of backbone"):
        build_backbone("cseg_tiny", depth=3)


def test_deeplabv3_resnet101_paper_configuration(cl):
    """ResNet-101 body = torchvision's resnet101 without ``fc`` (44,549,160 - 2,049,000
    parameters); ASPP 256; output stride 16; forward once on a 64x64 image."""
    torch.manual_seed(0)
    backbone = cl.deeplabv3("resnet101")
    assert sum(p.numel() for p in backbone.body.parameters()) == 42_500_160
    # ASPP: 4 branches (1x1 + 3 dilated 3x3) and the pooling conv from 2048 to 256, reductions
    # 1024 -> 256 and 256 -> 256, three norms (1024, 256, 256 channels, weight + bias)
    head = 2048 * 256 * (1 + 27 + 1) + 1024 * 256 + 256 * 256 + 2 * (1024 + 256 + 256)
    assert sum(p.numel() for p in backbone.head.parameters()) == head
    model = cl.ContinualSegmenter(backbone, [16, 5]).eval()
    assert sum(p.numel() for p in model.classifier.parameters()) == 21 * 257
    convs = [m for n, m in backbone.body.mod5.named_modules() if n.endswith("conv2")]
    assert [c.dilation for c in convs] == [(2, 2)] * 3 and convs[0].stride == (1, 1)
    assert [m.dilation for m in backbone.head.map_convs] == [(1, 1), (6, 6), (12, 12), (18, 18)]
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.logits.shape == (1, 21, 64, 64) and out.logits_small.shape == (1, 21, 4, 4)
    assert out.pre_logits.shape == (1, 256, 4, 4) and out.body.shape == (1, 2048, 4, 4)
    assert backbone.stage_channels == (256, 512, 1024, 2048)
    assert [tuple(s.shape[1:]) for s in out.stages] == [
        (256, 16, 16),
        (512, 8, 8),
        (1024, 4, 4),
        (2048, 4, 4),
    ]
    assert len(out.pod_features()) == 6 and out.pod_features()[-1] is out.logits_small
    # the body output is the activated last stage; the stage taps are pre-activation
    assert torch.equal(out.body, F.leaky_relu(out.stages[-1], 0.01))


def test_output_stride_8_dilates_mod4_and_mod5(cl):
    body = cl.ResNetBody((1, 1, 2, 2), width=4, output_stride=8)
    dil = [[b.convs.conv2.dilation[0] for b in getattr(body, f"mod{i}").children()] for i in (4, 5)]
    assert dil == [[2, 2], [4, 4]]
    out, stages = body(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 128, 4, 4) and [s.shape[-1] for s in stages] == [8, 4, 4, 4]
    with pytest.raises(ConfigError, match="output_stride"):
        cl.ResNetBody(output_stride=32)


def _torchvision_features(tv: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    x = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
    outs = []
    for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
        x = layer(x)
        outs.append(x)
    return outs


def test_torchvision_weights_load_and_match_except_the_first_dilated_block(cl):
    """A torchvision ResNet state dict loads by name; with ReLU the stages equal torchvision's
    (replace_stride_with_dilation=[False, False, True]) except mod5, whose first block the
    official code dilates too (torchvision keeps dilation 1 there)."""
    from torchvision.models.resnet import Bottleneck, ResNet

    torch.manual_seed(1)
    tv = ResNet(Bottleneck, [1, 1, 1, 2], replace_stride_with_dilation=[False, False, True])
    for m in tv.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    tv.eval()
    body = cl.ResNetBody((1, 1, 1, 2), activation="relu").eval()
    left = cl.load_backbone_weights(body, tv.state_dict())
    assert left and all(k.endswith("num_batches_tracked") for k in left)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = _torchvision_features(tv, x)
        _, stages = body(x)
        for i in range(3):
            assert torch.allclose(F.relu(stages[i]), ref[i], atol=1e-5)
        assert not torch.allclose(F.relu(stages[3]), ref[3], atol=1e-3)
        first = body.mod5.block1.convs.conv2
        first.dilation, first.padding = (1, 1), (1, 1)
        _, stages = body(x)
        assert torch.allclose(F.relu(stages[3]), ref[3], atol=1e-5)


def test_official_checkpoint_format_loads(cl, tmp_path):
    """The in-place-ABN checkpoint layout: ``{'state_dict': {'module.mod1.conv1.weight', ...,
    'module.mod1.bn1.weight' (no 'bn.' level), 'module.classifier.fc.*'}}``."""
    torch.manual_seed(2)
    src = cl.ResNetBody((1, 1, 1, 1), width=4)
    state = {
        "module." + k.replace(".bn.", "."): v.clone() + 0.5
        for k, v in src.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    state["module.classifier.fc.weight"] = torch.zeros(10, 128)
    state["module.classifier.fc.bias"] = torch.zeros(10)
    path = tmp_path / "resnet_iabn_sync.pth.tar"
    torch.save({"state_dict": state, "epoch": 90}, path)
    dst = cl.ResNetBody((1, 1, 1, 1), width=4)
    cl.load_backbone_weights(dst, path)
    for k, v in dst.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, src.state_dict()[k] + 0.5), k

    with pytest.raises(ConfigError, match=r"pretrained.*does not exist"):
        cl.load_backbone_weights(dst, tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read"):
        cl.load_backbone_weights(dst, tmp_path / "junk.pth")
    with pytest.raises(ConfigError, match="does not fit"):
        cl.load_backbone_weights(cl.ResNetBody((1, 1, 1, 1), width=8), path)
    with pytest.raises(ConfigError, match=r"5 missing"):
        partial = {k: v for k, v in state.items() if not k.startswith("module.mod5.block1.proj")}
        cl.load_backbone_weights(dst, partial)


def test_aspp_head_matches_official_forward(cl):
    """Mirrors MiB ``modules/deeplab.py::DeeplabV3.forward`` in training mode:
    ``red_bn(red_conv(map_bn(cat(map_convs))) + pool_red_conv(gp_bn(gp_conv(mean))).repeat)``,
    each norm = BN then leaky ReLU 0.01 (identity for none)."""
    torch.manual_seed(3)
    head = cl.ASPPHead(8, 6, 4, dilations=(1, 2, 3)).train()
    x = torch.randn(2, 8, 5, 5)

    def abn(norm, t):
        bn = norm.bn
        t = F.batch_norm(t, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
        return F.leaky_relu(t, 0.01)

    out = torch.cat([m(x) for m in head.map_convs], dim=1)
    out = head.red_conv(abn(head.map_bn, out))
    pool = x.view(2, 8, -1).mean(dim=-1).view(2, 8, 1, 1)
    pool = head.pool_red_conv(abn(head.global_pooling_bn, head.global_pooling_conv(pool)))
    expected = abn(head.red_bn, out + pool.repeat(1, 1, 5, 5))
    assert torch.allclose(head(x), expected, atol=1e-6)


def literal_init_new_classifier(cls: torch.nn.ModuleList, classes: list[int]) -> None:
    """MiB ``IncrementalSegmentationModule.init_new_classifier``, line by line."""
    cls_last = cls[-1]
    imprinting_w = cls[0].weight[0]
    bkg_bias = cls[0].bias[0]
    bias_diff = torch.log(torch.FloatTensor([classes[-1] + 1]))
    new_bias = bkg_bias - bias_diff
    cls_last.weight.data.copy_(imprinting_w)
    cls_last.bias.data.copy_(new_bias)
    cls[0].bias[0].data.copy_(new_bias.squeeze(0))


def test_balanced_initialisation(cl):
    torch.manual_seed(4)
    clf = cl.IncrementalClassifier(8, [16])
    feats = torch.randn(2, 8, 3, 3)
    with torch.no_grad():
        before = torch.softmax(clf(feats), dim=1)
    bias_before = clf.cls[0].bias[0].item()
    clf.add_step(5)
    assert clf.classes_per_step == [16, 5] and (clf.num_old, clf.num_new) == (16, 5)
    w0 = clf.cls[0].weight[0]
    assert torch.equal(clf.cls[1].weight, w0.expand(5, -1, -1, -1))
    b0 = clf.cls[0].bias[0].item()
    assert clf.cls[1].bias.tolist() == [b0] * 5
    assert b0 == pytest.approx(bias_before - math.log(6))  # by hand: b_0 - log(N + 1), N = 5
    with torch.no_grad():
        after = torch.softmax(clf(feats), dim=1)
    assert torch.allclose(after[:, 1:16], before[:, 1:16], atol=1e-6)
    assert torch.allclose(after[:, :1] + after[:, 16:].sum(1, keepdim=True), before[:, :1])
    assert torch.allclose(after[:, 16:], after[:, :1].expand(-1, 5, -1, -1), atol=1e-6)

    # against MiB's function on the same starting weights
    torch.manual_seed(5)
    a = cl.IncrementalClassifier(8, [11, 2])
    b = cl.IncrementalClassifier(8, [11, 2])
    b.load_state_dict(a.state_dict())
    bg_bias = a.cls[0].bias[0].item()
    a.init_balanced_()
    with torch.no_grad():
        literal_init_new_classifier(b.cls, [11, 2])
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert a.cls[0].bias[0].item() == pytest.approx(bg_bias - math.log(3))

    with pytest.raises(ConfigError, match="init"):
        clf.add_step(1, init="imprint")
    with pytest.raises(ConfigError, match="num_new"):
        clf.add_step(0)
    with pytest.raises(ConfigError, match="after step 0"):
        cl.IncrementalClassifier(8, [3]).init_balanced_()


def test_tiny_segmenter_trains_and_grows(cl):
    torch.manual_seed(6)
    model = cl.ContinualSegmenter(cl.TinySegBackbone(), [16])
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 232_432
    x = torch.randn(4, 3, 64, 64)
    out = model(x)
    assert out.logits.shape == (4, 16, 64, 64) and out.logits_small.shape == (4, 16, 16, 16)
    assert [tuple(t.shape[1:]) for t in out.pod_features()] == [
        (16, 16, 16),
        (24, 8, 8),
        (48, 8, 8),
        (64, 8, 8),
        (64, 16, 16),
        (16, 16, 16),
    ]
    F.cross_entropy(out.logits, torch.randint(0, 16, (4, 64, 64))).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name

    old = cl.frozen_copy(model)
    assert not old.training and not any(p.requires_grad for p in old.parameters())
    model.grow(5)
    assert (model.num_classes, model.num_old, model.num_new) == (21, 16, 5)
    with torch.no_grad():
        assert model(x).logits.shape == (4, 21, 64, 64)
        assert old(x).logits.shape == (4, 16, 64, 64)
    assert old.classifier.cls[0].bias.data_ptr() != model.classifier.cls[0].bias.data_ptr()
    torch.manual_seed(7)
    again = cl.ContinualSegmenter(cl.TinySegBackbone(), [16])
    assert sum(p.numel() for p in again.parameters()) == n_params
    with pytest.raises(ConfigError, match="widths"):
        cl.TinySegBackbone(widths=(8, 8))
