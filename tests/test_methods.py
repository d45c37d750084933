"""Every registered method: one training step and its inference network (registry-parametrized).

A new method file in methods/ is covered here without a new test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdseg import IGNORE_INDEX
from kdseg.ema import EmaTeacher, attach_teacher
from kdseg.errors import ConfigError
from kdseg.lidar_data import MIX_PARTNERS, Cloud, LidarBatch
from kdseg.methods.base import build_method, list_methods, options_help
from kdseg.segmenter import Segmenter

NUM_CLASSES = 19


def _cloud(seed: int, n: int = 1500, labelled: bool = True) -> Cloud:
    rng = np.random.default_rng(seed)
    r = rng.uniform(2, 30, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    z = rng.uniform(-1.7, 2.0, n)
    pts = np.stack([r * np.cos(phi), r * np.sin(phi), z, rng.uniform(0, 1, n)], 1)
    labels = np.where(z > 0, 12, 8).astype(
        np.int64
    )  # road (8) below the sensor, building (12) above
    if not labelled:
        labels[:] = IGNORE_INDEX
    else:
        labels[rng.random(n) < 0.3] = IGNORE_INDEX
    return Cloud(torch.from_numpy(pts.astype(np.float32)), torch.from_numpy(labels), ("00", seed))


def with_guidance(cloud: Cloud, channels: int, seed: int) -> Cloud:
    """Synthetic 2D guidance: the points in a 90° front sector are "in the image"."""
    gen = torch.Generator().manual_seed(seed)
    n = cloud.points.shape[0]
    azimuth = torch.atan2(cloud.points[:, 1], cloud.points[:, 0])
    valid = azimuth.abs() < np.pi / 4
    feats = torch.randn(n, channels, generator=gen) * valid[:, None]
    pred = torch.where(valid, torch.randint(0, NUM_CLASSES, (n,), generator=gen), IGNORE_INDEX)
    cloud.features_2d, cloud.valid_2d, cloud.pred_2d = feats, valid, pred
    return cloud


def _batch(method) -> LidarBatch:
    o = method.opts
    n_lab, n_unl = o.clouds_per_batch
    lab = [_cloud(k) for k in range(n_lab)]
    unl = [_cloud(100 + k, labelled=False) for k in range(n_unl)]
    if MIX_PARTNERS in method.requires:  # another scan per cloud, as LidarBatches draws them
        for k, c in enumerate(lab + unl):
            c.partner = _cloud(1000 + c.frame[1], labelled=k < n_lab)
    if "features_2d" in method.requires:
        for c in lab + unl:
            with_guidance(c, o.feature_dim_2d, c.frame[1])
            if c.partner is not None:
                with_guidance(c.partner, o.feature_dim_2d, c.partner.frame[1])
    return LidarBatch(labelled=lab, unlabelled=unl)


def test_registry_has_the_baselines():
    assert {"sup_only", "mean_teacher", "lasermix", "ignet"} <= set(list_methods())


@pytest.mark.parametrize("name", list_methods())
def test_training_step_and_inference(name):
    torch.manual_seed(0)
    method = build_method(name, NUM_CLASSES, {"labelled_per_batch": 1})
    if method.ema_momentum is not None:
        attach_teacher(method, EmaTeacher(method.ema_source, method.ema_momentum).teacher)
    method.train()
    terms = method.training_step(_batch(method), step=0)
    assert terms and all(t.ndim == 0 for t in terms.values())
    total = sum(terms.values())
    assert torch.isfinite(total), terms
    total.backward()
    backbone_grads = [
        p.grad
        for n, p in method.student.named_parameters()
        if "backbone" in n and p.grad is not None
    ]
    assert backbone_grads, "no gradient reached the backbone"
    assert any(float(g.abs().sum()) > 0 for g in backbone_grads)
    net = method.inference_network()
    assert isinstance(net, Segmenter)
    net.eval()
    pred = net.predict(_cloud(7).points)
    assert pred.shape == (1500,) and pred.dtype == torch.int64
    assert int(pred.min()) >= 0 and int(pred.max()) < NUM_CLASSES
    assert all(h for h in options_help(name).values()), "every option documents itself"


def test_unknown_method_and_bad_options():
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        build_method("nope", NUM_CLASSES)
    with pytest.raises(ConfigError, match=r"sup_only\.lr_typo"):
        build_method("sup_only", NUM_CLASSES, {"lr_typo": 1})
    with pytest.raises(ConfigError, match=r"mean_teacher\.consistency_weight"):
        build_method("mean_teacher", NUM_CLASSES, {"consistency_weight": "high"})


def test_lasermix_mixes_by_inclination():
    from kdseg.methods.lasermix import inclination_areas, laser_mix

    a, b = _cloud(1), _cloud(2, labelled=False)
    areas = inclination_areas(a.points, 4, -25.0, 3.0)
    assert set(areas.unique().tolist()) <= {0, 1, 2, 3}
    m1, m2 = laser_mix(a, b, 4, -25.0, 3.0)
    # the two mixes together hold every point of both scans exactly once
    assert m1.points.shape[0] + m2.points.shape[0] == a.points.shape[0] + b.points.shape[0]
    # labels of the unlabelled scan stay hidden in the mixes
    pa = inclination_areas(a.points, 4, -25.0, 3.0) % 2 == 0
    assert torch.equal(m1.labels[: int(pa.sum())], a.labels[pa])


@pytest.mark.parametrize("name", ["mean_teacher", "lasermix"])
def test_consistency_weight_follows_the_ramp_up(name):
    """The consistency term is weighted by w·exp(-5(1-t)²), t = step / (ramp · iterations)."""
    method = build_method(
        name,
        NUM_CLASSES,
        {"labelled_per_batch": 1, "mix_weight": 0.0}
        if name == "lasermix"
        else {"labelled_per_batch": 1},
    )
    method.total_iterations = 100  # ramp-up over the first 30 iterations (default 0.3)
    teacher = EmaTeacher(method.ema_source, method.ema_momentum).teacher
    with torch.no_grad():  # a teacher that differs from the student
        for p in teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    attach_teacher(method, teacher)
    method.eval()  # same outputs at every call (no BN statistics update)
    batch = _batch(method)
    torch.manual_seed(0)
    start = method.training_step(batch, step=0)["consistency"]
    torch.manual_seed(0)
    middle = method.training_step(batch, step=15)["consistency"]
    torch.manual_seed(0)
    end = method.training_step(batch, step=30)["consistency"]
    assert float(end) > 0
    assert float(start / end) == pytest.approx(np.exp(-5.0), rel=1e-4)
    assert float(middle / end) == pytest.approx(np.exp(-5.0 * 0.25), rel=1e-4)
    assert method.consistency_weight(99) == method.opts.consistency_weight
