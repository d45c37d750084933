"""Continual-segmentation losses (kdseg.continual): each against a hand computation on tiny
tensors and against a literal, loop-by-loop re-derivation of the official function it mirrors
(MiB 1c58983 / PLOP 4b4a060 / LGKD 78262c2) on random tensors.

``kdseg.continual`` is imported inside the tests (fixture ``cl``), not at collection: importing
it registers image backbones, and tests/test_models.py parametrises over every registered
backbone when it is collected (it builds voxel and range ones only).
"""

from __future__ import annotations

import math

import numpy as np
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


def rand_case(seed: int, b: int = 2, c: int = 5, c_old: int = 3, h: int = 3, w: int = 4):
    """Random new logits (B, C, H, W), old logits (B, C_o, H, W) and labels in the protocol's
    form (0, new classes C_o..C-1, and 255), float64 for the loop references."""
    g = torch.Generator().manual_seed(seed)
    new = torch.randn(b, c, h, w, generator=g, dtype=torch.float64) * 2
    old = torch.randn(b, c_old, h, w, generator=g, dtype=torch.float64) * 2
    choices = torch.tensor([0, 0, 255, *range(c_old, c)])
    labels = choices[torch.randint(0, len(choices), (b, h, w), generator=g)]
    return new, old, labels


def pixels(b: int, h: int, w: int):
    return [(i, y, x) for i in range(b) for y in range(h) for x in range(w)]


def log_softmax_list(z: list[float]) -> list[float]:
    m = max(z)
    s = math.log(sum(math.exp(v - m) for v in z)) + m
    return [v - s for v in z]


# --------------------------------------------------------------------------- cross-entropies


def test_cross_entropy_by_hand(cl):
    logits = torch.tensor([[[[0.0, 5.0]], [[math.log(3), -1.0]]]])  # (1, 2, 1, 2)
    labels = torch.tensor([[[1, 255]]])
    ce = math.log(4 / 3)  # -log(3 / (1 + 3))
    assert cl.cross_entropy(logits, labels).item() == pytest.approx(ce / 2)
    assert cl.cross_entropy(logits, labels, reduction="valid_pixels").item() == pytest.approx(ce)
    weighted = cl.cross_entropy(logits, labels, pixel_weight=torch.tensor([0.25]))
    assert weighted.item() == pytest.approx(ce / 8)
    per = cl.cross_entropy(logits, labels, reduction="none")
    assert per.shape == (1, 1, 2) and per[0, 0, 1].item() == 0.0


def test_cross_entropy_matches_official_reduction(cl):
    """Mirrors the trainers' ``nn.CrossEntropyLoss(ignore_index=255, reduction='none')`` then
    ``(classif_adaptive_factor * loss).mean()``: ignored pixels count in the denominator."""
    new, _, labels = rand_case(0)
    factor = torch.tensor([0.3, 0.9], dtype=torch.float64)
    total = 0.0
    for i, y, x in pixels(2, 3, 4):
        t = int(labels[i, y, x])
        if t != 255:
            total += -log_softmax_list(new[i, :, y, x].tolist())[t] * float(factor[i])
    expected = total / (2 * 3 * 4)
    got = cl.cross_entropy(new, labels, pixel_weight=factor)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_unbiased_cross_entropy_by_hand(cl):
    logits = torch.zeros(1, 3, 1, 4)  # uniform over 3 channels; C_o = 2 (background + 1 old)
    labels = torch.tensor([[[0, 1, 2, 255]]])
    per = cl.unbiased_cross_entropy(logits, labels, num_old=2, reduction="none")
    expected = [-math.log(2 / 3), -math.log(2 / 3), -math.log(1 / 3), 0.0]
    assert per[0, 0].tolist() == pytest.approx(expected)
    mean = cl.unbiased_cross_entropy(logits, labels, num_old=2)
    assert mean.item() == pytest.approx(sum(expected) / 4)


def test_unbiased_cross_entropy_matches_mib_loop(cl):
    """Mirrors MiB ``utils/loss.py::UnbiasedCrossEntropy.forward`` (reduction 'none' then the
    trainer's ``.mean()``): labels below old_cl -> 0; a 0 label scores
    ``logsumexp(z[:old_cl]) - logsumexp(z)``, a new label ``z_y - logsumexp(z)``; 255 -> 0."""
    new, _, labels = rand_case(1)
    labels[0, 0, 0] = 1  # an old-class id (masked to 0 by the protocol, mapped to 0 by MiB)
    total = 0.0
    for i, y, x in pixels(2, 3, 4):
        t = int(labels[i, y, x])
        if t == 255:
            continue
        z = new[i, :, y, x].tolist()
        logz = math.log(sum(math.exp(v) for v in z))
        if t < 3:
            total -= math.log(sum(math.exp(v) for v in z[:3])) - logz
        else:
            total -= z[t] - logz
    got = cl.unbiased_cross_entropy(new, labels, num_old=3)
    assert got.item() == pytest.approx(total / 24, rel=1e-12)
    with pytest.raises(ConfigError, match="num_old"):
        cl.unbiased_cross_entropy(new, labels, num_old=5)


# --------------------------------------------------------------------------- distillation


def test_kd_loss_by_hand(cl):
    old = torch.zeros(1, 2, 1, 1)  # p_old = (1/2, 1/2)
    new = torch.tensor([0.0, math.log(3), 5.0]).view(1, 3, 1, 1)  # cut to (0, ln 3)
    expected = -(0.5 * math.log(1 / 4) + 0.5 * math.log(3 / 4)) / 2
    assert cl.kd_loss(new, old).item() == pytest.approx(expected)
    # temperature 2 divides both: old stays uniform, new becomes (0, ln 3 / 2)
    q1 = math.sqrt(3) / (1 + math.sqrt(3))
    expected_t = -(0.5 * math.log(1 - q1) + 0.5 * math.log(q1)) / 2
    assert cl.kd_loss(new, old, temperature=2.0).item() == pytest.approx(expected_t)


def test_kd_loss_matches_mib_loop(cl):
    """Mirrors MiB ``KnowledgeDistillationLoss.forward`` (``inputs.narrow(1, 0, C_o)``,
    ``log_softmax`` over those, ``softmax(targets * alpha)``, ``mean(dim=1)``, ``-mean``)."""
    new, old, _ = rand_case(2)
    for alpha in (1.0, 0.5):
        total = 0.0
        for i, y, x in pixels(2, 3, 4):
            logq = log_softmax_list(new[i, :3, y, x].tolist())
            p = [math.exp(v) for v in log_softmax_list((old[i, :, y, x] * alpha).tolist())]
            total += sum(pc * lq for pc, lq in zip(p, logq, strict=True)) / 3
        got = cl.kd_loss(new, old, alpha=alpha)
        assert got.item() == pytest.approx(-total / 24, rel=1e-12)


def test_unbiased_kd_by_hand(cl):
    new = torch.zeros(1, 3, 1, 1)  # q: background+new = 2/3, old class 1 = 1/3
    old = torch.tensor([math.log(1.0), math.log(3.0)]).view(1, 2, 1, 1)  # p = (1/4, 3/4)
    expected = -(0.25 * math.log(2 / 3) + 0.75 * math.log(1 / 3)) / 2
    assert cl.unbiased_kd_loss(new, old).item() == pytest.approx(expected)


def test_unbiased_kd_matches_mib_loop(cl):
    """Mirrors MiB ``UnbiasedKnowledgeDistillationLoss.forward``: ``new_bkg_idx = [0] +
    range(C_o, C)``, background term ``p_0 (logsumexp(z[new_bkg_idx]) - logsumexp(z))``, old
    terms ``p_c (z_c - logsumexp(z))`` for c = 1..C_o-1, divided by C_o, ``-mean``."""
    new, old, _ = rand_case(3)
    mask = (torch.arange(24).view(2, 3, 4) % 3 != 0).double()
    total = 0.0
    for i, y, x in pixels(2, 3, 4):
        z = new[i, :, y, x].tolist()
        logz = math.log(sum(math.exp(v) for v in z))
        bkg = math.log(sum(math.exp(z[k]) for k in [0, 3, 4])) - logz
        p = [math.exp(v) for v in log_softmax_list(old[i, :, y, x].tolist())]
        term = p[0] * bkg + sum(p[c] * (z[c] - logz) for c in (1, 2))
        total += term / 3 * float(mask[i, y, x])
    got = cl.unbiased_kd_loss(new, old, mask=mask)
    assert got.item() == pytest.approx(-total / 24, rel=1e-12)
    with pytest.raises(ConfigError, match="old_logits"):
        cl.unbiased_kd_loss(new[:, :3], old)


def test_feature_distillation_is_mse(cl):
    """Mirrors ILT in MiB's trainer: ``nn.MSELoss()(features['body'], features_old['body'])``."""
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(2, 3, 2, 2, generator=g), torch.randn(2, 3, 2, 2, generator=g)
    pairs = zip(a.flatten().tolist(), b.flatten().tolist(), strict=True)
    expected = sum((u - v) ** 2 for u, v in pairs) / 24
    assert cl.feature_distillation_loss(a, b).item() == pytest.approx(expected, rel=1e-6)
    assert cl.feature_distillation_loss(torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)) == 1.0


# --------------------------------------------------------------------------- LGKD


def test_lgkd_by_hand(cl):
    # C_o = 2 (background + one old class), C = 3 (one new class)
    old = torch.tensor([math.log(3.0), 0.0]).view(1, 2, 1, 1).repeat(1, 1, 1, 3)  # p=(3/4, 1/4)
    new = torch.tensor([0.0, math.log(2.0), math.log(5.0)]).view(1, 3, 1, 1).repeat(1, 1, 1, 3)
    labels = torch.tensor([[[0, 2, 255]]])  # background, novel, ignored
    log_q = [math.log(1 / 8), math.log(2 / 8), math.log(5 / 8)]
    prev = -(0.75 * log_q[0] + 0.25 * log_q[1])
    novel = -(0.25 * log_q[1] + 0.75 * log_q[2])  # background mass moved to class 2, q_0 = 0
    got = cl.lgkd_loss(new, old, labels, prev_weight=5.0, novel_weight=0.5)
    assert got.item() == pytest.approx((5 * prev + 0.5 * novel) / 2)
    # VOC 15-1 (novel_kd 0): the novel pixel still counts in the denominator
    off = cl.lgkd_loss(new, old, labels, prev_weight=1.0, novel_weight=0.0)
    assert off.item() == pytest.approx(prev / 2)
    per = cl.lgkd_loss(new, old, labels, 1.0, 1.0, reduction="none")
    assert per[0, 0].tolist() == pytest.approx([prev, novel, 0.0])
    none_valid = cl.lgkd_loss(new, old, torch.full_like(labels, 255), 1.0, 1.0)
    assert none_valid.item() == 0.0


def test_lgkd_matches_official_loop(cl):
    """Mirrors LGKD ``LabelGuidedKnowledgeDistillationLoss.forward``: targets < C_o -> 0, drop
    255, ``old_prob = [softmax(alpha z_old), 0...]``; on novel pixels
    ``old_prob[t] = old_prob[0]`` then ``old_prob[0] = 0``; ``loss = sum(old_prob *
    log_softmax(z_new))``; ``cat([prev_kd * prev, novel_kd * novel])``; ``-mean``."""
    new, old, labels = rand_case(5, c=6, c_old=3)
    labels[1, 2, 3] = 2  # an old-class id
    for prev_kd, novel_kd, alpha in ((5.0, 0.5, 1.0), (1.0, 0.0, 1.0), (2.0, 10.0, 0.7)):
        losses = []
        for i, y, x in pixels(2, 3, 4):
            t = int(labels[i, y, x])
            if t == 255:
                continue
            t = 0 if t < 3 else t
            p = [math.exp(v) for v in log_softmax_list((old[i, :, y, x] * alpha).tolist())]
            q = p + [0.0] * 3
            if t >= 3:
                q[t] = q[0]
                q[0] = 0.0
            logq = log_softmax_list(new[i, :, y, x].tolist())
            term = sum(a * b for a, b in zip(q, logq, strict=True))
            losses.append((novel_kd if t >= 3 else prev_kd) * term)
        expected = -sum(losses) / len(losses)
        got = cl.lgkd_loss(new, old, labels, prev_kd, novel_kd, alpha=alpha)
        assert got.item() == pytest.approx(expected, rel=1e-12)


def test_downsample_labels_takes_the_top_left_pixel(cl):
    labels = torch.arange(64).view(1, 8, 8)
    small = cl.downsample_labels(labels, (2, 2))
    assert small.tolist() == [[[0, 4], [32, 36]]]
    # the official call: F.interpolate(labels.unsqueeze(1).float(), scale_factor=1 / 16).long()
    big = torch.randint(0, 21, (2, 64, 96), generator=torch.Generator().manual_seed(6))
    official = F.interpolate(big.unsqueeze(1).float(), scale_factor=1 / 16).long()[:, 0]
    assert torch.equal(cl.downsample_labels(big, (4, 6)), official)


# --------------------------------------------------------------------------- POD


def test_local_pod_embedding_by_hand(cl):
    x = torch.arange(16.0).view(1, 1, 4, 4)
    emb = cl.local_pod_embedding(x)
    assert emb.shape == (1, 2 * 4 * (1 + 2 + 4))  # 2 C W sum(scales)
    assert emb[0, :8].tolist() == [1.5, 5.5, 9.5, 13.5, 6.0, 7.0, 8.0, 9.0]  # scale 1
    assert emb[0, 8:12].tolist() == [0.5, 4.5, 2.0, 3.0]  # scale 2, window (0, 0)
    assert emb[0, 12:16].tolist() == [2.5, 6.5, 4.0, 5.0]  # scale 2, window (0, 1)
    assert emb[0, 24:28].tolist() == [0.0, 0.0, 1.0, 1.0]  # scale 4, windows (0, 0), (0, 1)
    with pytest.raises(ConfigError, match="too small"):
        cl.local_pod_embedding(torch.zeros(1, 1, 2, 8))


def literal_local_pod(x: torch.Tensor, scales=(1, 2, 4)) -> list[list[float]]:
    """PLOP ``_local_pod`` with loops: ``k = w // scale``; per window (i, j) over rows
    ``i*k:(i+1)*k`` and columns ``j*k:(j+1)*k``: ``mean(dim=3).view(b, -1)`` then
    ``mean(dim=2).view(b, -1)``."""
    b, c, h, w = x.shape
    out: list[list[float]] = [[] for _ in range(b)]
    for n in range(b):
        for s in scales:
            k = w // s
            for i in range(s):
                for j in range(s):
                    rows = range(i * k, min((i + 1) * k, h))
                    cols = range(j * k, min((j + 1) * k, w))
                    for ch in range(c):
                        for r in rows:
                            out[n].append(sum(float(x[n, ch, r, q]) for q in cols) / len(cols))
                    for ch in range(c):
                        for q in cols:
                            out[n].append(sum(float(x[n, ch, r, q]) for r in rows) / len(rows))
    return out


@pytest.mark.parametrize("shape", [(8, 8), (8, 6), (9, 9), (7, 8)])
def test_local_pod_embedding_matches_loop(cl, shape):
    """Square, taller (windows from the width), odd (remainder dropped) and wider maps (the last
    row of windows cut by the bottom edge, as the official slicing does)."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, *shape, generator=g, dtype=torch.float64)
    got = cl.local_pod_embedding(x)
    expected = torch.tensor(literal_local_pod(x), dtype=torch.float64)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=0, atol=1e-12)


def test_pod_loss_by_hand(cl):
    feat_old, feat_new = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    log_old = torch.zeros(1, 2, 2, 2)
    log_new = torch.zeros(1, 3, 2, 2)
    log_new[:, 0] = 1.0
    log_new[:, 2] = 1.0  # folded into background: 2, squared: 4
    got = cl.pod_loss(
        [feat_new, log_new],
        [feat_old, log_old],
        num_old=2,
        num_new=1,
        feature_factor=0.01,
        logits_factor=0.5,
        scales=(1, 2),
    )
    # embeddings have 12 entries per channel at scales (1, 2) on a 2x2 map
    expected = (0.01 * math.sqrt(12) + 0.5 * 4 * math.sqrt(12)) * math.sqrt(3 / 1) / 2
    assert got.item() == pytest.approx(expected)
    no_logits = cl.pod_loss(
        [feat_new, log_new], [feat_old, log_old], 2, 1, 0.01, 0.0, (1, 2), schedule=False
    )
    assert no_logits.item() == pytest.approx(0.01 * math.sqrt(12) / 2)  # still divided by 2


def test_pod_loss_matches_plop_features_distillation(cl):
    """Mirrors PLOP ``features_distillation(collapse_channels='local', pod_factor=0.01,
    pod_options={'switch': {'after': {'extra_channels': 'sum', 'factor': 0.0005, 'type':
    'local'}}}, use_pod_schedule=True)``: fold extra channels into background on the last (new)
    map, square both, local POD, per-sample Frobenius norm, batch mean, factor,
    ``sqrt(C_cur / C_new)``, sum over layers / number of layers."""
    g = torch.Generator().manual_seed(8)
    shapes = [(4, 8, 8), (6, 4, 4), (5, 4, 4)]
    old = [torch.randn(2, *s, generator=g, dtype=torch.float64) for s in shapes]
    new = [torch.randn(2, *s, generator=g, dtype=torch.float64) for s in shapes]
    old.append(torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64))
    new.append(torch.randn(2, 5, 4, 4, generator=g, dtype=torch.float64))
    c_old, c_cur, c_new = 3, 5, 2
    total = 0.0
    for layer, (a, b) in enumerate(zip(old, new, strict=True)):
        last = layer == len(old) - 1
        if last:
            folded = torch.zeros_like(a)
            for n in range(2):
                for r in range(4):
                    for q in range(4):
                        folded[n, 0, r, q] = b[n, 0, r, q] + sum(
                            b[n, k, r, q] for k in range(c_old, c_cur)
                        )
                        for k in range(1, c_old):
                            folded[n, k, r, q] = b[n, k, r, q]
            b = folded
        ea, eb = literal_local_pod(a**2), literal_local_pod(b**2)
        norms = [
            math.sqrt(sum((u - v) ** 2 for u, v in zip(ra, rb, strict=True)))
            for ra, rb in zip(ea, eb, strict=True)
        ]
        factor = 0.0005 if last else 0.01
        total += factor * (sum(norms) / 2) * math.sqrt(c_cur / c_new)
    expected = total / len(old)
    got = cl.pod_loss(new, old, num_old=c_old, num_new=c_new)
    assert got.item() == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ConfigError, match="logits"):
        cl.pod_loss(new, old, num_old=2, num_new=3)


# --------------------------------------------------------------------------- pseudo-labels


def test_plop_entropy_by_hand(cl):
    uniform = torch.full((1, 4, 1, 1), 0.25)
    assert cl.plop_entropy(uniform).item() == pytest.approx(0.25, rel=1e-6)  # 1/K, not 1
    onehot = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert abs(cl.plop_entropy(onehot).item()) < 1e-7


def stats_with(cl, counts: list[int], bins_at: list[int], num_classes: int = 3):
    stats = cl.EntropyStatistics(num_classes)
    for b, n in zip(bins_at, counts, strict=True):
        stats.counts[0, b] = n
    return stats


def test_official_median_quirks_by_hand(cl):
    # all of a class in bin 0 (every ADE20K class): threshold 0.005
    assert stats_with(cl, [10], [0]).thresholds()[0].item() == pytest.approx(0.005)
    # bins 0 and 1 hold 2 and 10: official 0.01 + 6/10 * 0.01 = 0.016 (index, not count,
    # added to the running sum); the histogram median is (1 + 4/10) / 100 = 0.014
    s = stats_with(cl, [2, 10], [0, 1])
    assert s.thresholds()[0].item() == pytest.approx(0.016)
    assert s.thresholds(median="corrected")[0].item() == pytest.approx(0.014)
    # 4 + 4 + 4 in bins 0-2: running sums 0, 0, 1, 3, 6 meet half = 6 on the empty bin 4: 0/0
    assert math.isnan(stats_with(cl, [4, 4, 4], [0, 1, 2]).thresholds()[0].item())
    # 3 in bin 50: the running sum (0, 1, 3, ...) overtakes half = 1.5 and the loop falls
    # through; it ends on bin 99 (empty) with the running sum 0 + 1 + ... + 99 = 4950:
    # (1.5 - 4950) / 0 = -inf, floored to 0.001
    assert stats_with(cl, [3], [50]).thresholds()[0].item() == pytest.approx(0.001)
    # 101 in each of bins 0..98: half = 4999.5 is never within reach of a bin and stays above
    # the final running sum 4950: +inf (every pixel predicted as that class is accepted)
    s = stats_with(cl, [101] * 99, list(range(99)))
    assert s.thresholds()[0].item() == math.inf
    assert s.thresholds(median="corrected")[0].item() == pytest.approx(0.495)
    # break at k = 29, whose bin index is int(0.29 * 100) = 28: 0.29 + (410 - 406) / 10 * 0.01
    s29 = stats_with(cl, [10, 810], [28, 99])
    assert s29.thresholds()[0].item() == pytest.approx(0.294)
    # classes never predicted get the floor
    assert s.thresholds()[1:].tolist() == pytest.approx([0.001, 0.001])


def literal_find_median(histograms: torch.Tensor, nb_bins: int, base_threshold: float):
    """PLOP ``Trainer.find_median`` (mode 'entropy') after the histogram loop, line by line."""
    thresholds = torch.zeros(histograms.shape[0], dtype=torch.float32)
    for c in range(histograms.shape[0]):
        total = histograms[c].sum()
        if total <= 0.0:
            continue
        half = total / 2
        running_sum = 0.0
        for lower_border in range(nb_bins):
            lower_border = lower_border / nb_bins
            bin_index = int(lower_border * nb_bins)
            if half >= running_sum and half <= (running_sum + histograms[c, bin_index]):
                break
            running_sum += lower_border * nb_bins
        median = lower_border + ((half - running_sum) / histograms[c, bin_index].sum()) * (
            1 / nb_bins
        )
        thresholds[c] = median
    for c in range(len(thresholds)):
        thresholds[c] = max(thresholds[c], base_threshold)
    return thresholds


def test_official_median_matches_plop_loop(cl):
    rng = np.random.default_rng(9)
    stats = cl.EntropyStatistics(40)
    for c in range(40):  # concentrated, spread, sparse, huge and empty rows
        kind = c % 5
        if kind == 0:
            stats.counts[c, : rng.integers(1, 4)] = torch.from_numpy(rng.integers(0, 50, 3))[:1]
        elif kind == 1:
            stats.counts[c] = torch.from_numpy(rng.integers(0, 200, 100))
        elif kind == 2:
            idx = rng.choice(100, 4, replace=False)
            stats.counts[c, idx] = torch.from_numpy(rng.integers(1, 30, 4))
        elif kind == 3:
            stats.counts[c, rng.integers(0, 100)] = int(rng.integers(1, 10**9))
            stats.counts[c, rng.integers(0, 100)] += int(rng.integers(1, 10**9))
    stats.counts[4, :3] = 4  # NaN
    stats.counts[9, 50] = 3  # -inf, floored
    stats.counts[14, :99] = 101  # +inf
    stats.counts[19, 28], stats.counts[19, 99] = 10, 810  # the k = 29 -> bin 28 case
    got = stats.thresholds()
    expected = literal_find_median(stats.counts.clone(), 100, 0.001)
    assert torch.equal(torch.isnan(got), torch.isnan(expected))
    ok = ~torch.isnan(got)
    assert torch.equal(got[ok], expected[ok])


def test_entropy_statistics_update_matches_plop(cl):
    """Mirrors the histogram loop of ``find_median`` (mode 'entropy'): ``mask_bg = labels ==
    0``, ``entropy(probas)[mask_bg] / log(C_cur)``, row = argmax, column =
    ``clamp((v * 100).long(), max=99)``, ``index_put_(..., accumulate=True)``."""
    g = torch.Generator().manual_seed(10)
    stats = cl.EntropyStatistics(num_classes=6)
    expected = torch.zeros(6, 100, dtype=torch.int64)
    for _ in range(3):
        old = torch.randn(2, 4, 5, 5, generator=g) * 3
        labels = torch.randint(0, 3, (2, 5, 5), generator=g) * torch.tensor(2)  # 0, 2, 4
        labels[0, 0, :2] = 255
        stats.update(old, labels)
        probs = torch.softmax(old, dim=1)
        for i, y, x in pixels(2, 5, 5):
            if int(labels[i, y, x]) != 0:
                continue
            p = probs[i, :, y, x]
            ent = -(1 / math.log(4 + 1e-8)) * torch.mean(p * torch.log(p + 1e-8))
            v = ent / torch.log(torch.tensor(6).float())
            expected[int(p.argmax()), min(int((v * 100).long()), 99)] += 1
    assert torch.equal(stats.counts, expected)
    hand = cl.EntropyStatistics(num_classes=3)
    hand.update(
        torch.tensor([[10.0, 0.0], [0.0, 0.0]]).T.reshape(1, 2, 1, 2),
        torch.zeros(1, 1, 2, dtype=torch.long),
    )
    # (10, 0): near-certain class 0, bin 0; (0, 0): 0.5 / log 3 = 0.455 -> bin 45, class 0
    assert hand.counts[0, 0] == 1 and hand.counts[0, 45] == 1 and hand.counts.sum() == 2


def test_entropy_pseudo_labels_by_hand(cl):
    old = torch.tensor([[10.0, 0.0], [0.0, 0.1], [0.0, 5.0], [3.0, 0.0]]).T.reshape(1, 2, 1, 4)
    labels = torch.tensor([[[0, 0, 2, 255]]])
    thresholds = torch.tensor([0.01, 0.01, 0.01])
    out = cl.entropy_pseudo_labels(labels, old, thresholds, math.log(3))
    assert out.labels.tolist() == [[[0, 255, 2, 255]]]
    assert out.background.tolist() == [[[True, True, False, False]]]
    assert out.valid.tolist() == [[[True, False, False, False]]]
    assert out.adaptive_factor.tolist() == pytest.approx([1 / (2 + 1e-6)])


def test_entropy_pseudo_labels_match_plop_training_branch(cl):
    """Mirrors ``Trainer.train``'s ``pseudo_labeling == 'entropy'`` branch (``pseudo_soft`` None,
    ``pseudo_ablation`` None, ``classif_adaptive_factor`` True) with in-place masking."""
    g = torch.Generator().manual_seed(11)
    old = torch.randn(3, 4, 6, 6, generator=g) * 4
    labels = torch.tensor([0, 0, 0, 4, 5, 255])[torch.randint(0, 6, (3, 6, 6), generator=g)]
    thresholds = torch.tensor([0.001, 0.004, float("nan"), 0.02, 0.001, 0.001])
    max_entropy = torch.log(torch.tensor(6).float())
    got = cl.entropy_pseudo_labels(labels, old, thresholds, max_entropy)

    ref = labels.clone()
    mask_background = labels < 4
    probs = torch.softmax(old, dim=1)
    _, pseudo_labels = probs.max(dim=1)
    ent = -(1 / math.log(4 + 1e-8)) * torch.mean(probs * torch.log(probs + 1e-8), dim=1)
    mask_valid_pseudo = (ent / max_entropy) < thresholds[pseudo_labels]
    ref[~mask_valid_pseudo & mask_background] = 255
    ref[mask_valid_pseudo & mask_background] = pseudo_labels[mask_valid_pseudo & mask_background]
    num = (mask_valid_pseudo & mask_background).float().sum(dim=(1, 2))
    den = mask_background.float().sum(dim=(1, 2))
    assert torch.equal(got.labels, ref)
    assert torch.equal(got.adaptive_factor, num / (den + 1e-6))
    assert 0 < int((got.labels == 255).sum()) < got.labels.numel()  # both outcomes occur


# --------------------------------------------------------------------------- presets


def test_lgkd_presets_are_the_official_scripts(cl):
    table = {
        ("voc", "19-1"): (5, 0.5),
        ("voc", "15-5"): (5, 1),
        ("voc", "15-1"): (1, 0),
        ("ade20k", "100-50"): (1, 20),
        ("ade20k", "100-10"): (1, 1),
        ("ade20k", "50-50"): (2, 10),
    }
    for (dataset, task), (prev, novel) in table.items():
        w = cl.lgkd_weights(dataset, task)
        assert (w.prev, w.novel) == (prev, novel), (dataset, task)
    assert cl.lgkd_weights("voc", "15-5s").novel == 0.0  # the 15-1 quirk, by its code name
    assert "novel_kd 0" in cl.lgkd_weights("voc", "15-1").note
    assert cl.lgkd_weights("ade20k", "50") == cl.lgkd_weights("ade20k", "50-50")
    with pytest.raises(ConfigError, match=r"lgkd_weights.*no official script for voc 10-1"):
        cl.lgkd_weights("voc", "10-1")
    assert cl.lgkd_weights("voc", "10-1", prev=3, novel=1).source == "explicit"
    with pytest.raises(ConfigError, match="both"):
        cl.lgkd_weights("voc", "10-1", prev=3)


def test_method_and_pod_presets(cl):
    assert cl.pod_weights("PLOP", "voc") == cl.PODWeights(0.01, 0.0005)
    assert cl.pod_weights("plop", "ade20k") == cl.PODWeights(0.01, 0.0005)  # script overridden
    assert cl.pod_weights("lgkd", "ade20k") == cl.PODWeights(0.001, 0.00001)
    m = cl.METHOD_WEIGHTS
    assert (m["lwf"].kd, m["ilt"].kd, m["ilt"].feature, m["mib"].kd) == (100, 100, 100, 10)
    assert m["mib"].kd_kind == "unbiased_kd" and m["plop_lgkd"].kd_kind == "lgkd"
    assert m["plop"].pod and m["plop"].classification == "pseudo_ce" and m["plop"].kd == 0
    with pytest.raises(ConfigError, match="pod_weights"):
        cl.pod_weights("mib", "voc")


# --------------------------------------------------------------------------- recipes


@pytest.fixture(scope="module")
def step1(cl):
    """VOC 15-5 step 1 on the small network: old model [16], new model [16, 5], 32x32 images."""
    torch.manual_seed(12)
    model = cl.ContinualSegmenter(cl.TinySegBackbone(), [16])
    old_model = cl.frozen_copy(model)
    model.grow(5)
    g = torch.Generator().manual_seed(13)
    images = torch.randn(2, 3, 32, 32, generator=g)
    labels = torch.tensor([0, 0, 16, 18, 20, 255])[torch.randint(0, 6, (2, 32, 32), generator=g)]
    with torch.no_grad():
        old = old_model(images)
    return model(images), old, labels


def test_recipes_wire_the_official_terms(cl, step1):
    new, old, labels = step1
    terms = cl.loss_terms(cl.recipe("mib", "voc", "15-5"), new, old, labels)
    assert set(terms) == {"ce", "kd"}
    assert torch.equal(terms["ce"], cl.unbiased_cross_entropy(new.logits, labels, 16))
    assert torch.equal(terms["kd"], 10 * cl.unbiased_kd_loss(new.logits, old.logits))

    terms = cl.loss_terms(cl.recipe("ilt", "voc", "15-5"), new, old, labels)
    assert set(terms) == {"ce", "kd", "feature"}
    assert torch.equal(terms["feature"], 100 * F.mse_loss(new.body, old.body))
    assert torch.equal(terms["kd"], 100 * cl.kd_loss(new.logits, old.logits))

    stats = cl.EntropyStatistics(21)
    stats.update(old.logits, labels)
    pseudo = cl.entropy_pseudo_labels(labels, old.logits, stats.thresholds(), stats.max_entropy)
    rec = cl.recipe("plop_lgkd", "voc", "15-5")
    terms = cl.loss_terms(rec, new, old, labels, pseudo)
    assert set(terms) == {"ce", "kd", "pod"}
    ce = cl.cross_entropy(new.logits, pseudo.labels, pixel_weight=pseudo.adaptive_factor)
    assert torch.equal(terms["ce"], ce)
    # LGKD on the stride-4 logits with the labels before pseudo-labelling, top-left pixels
    lgkd = cl.lgkd_loss(new.logits_small, old.logits_small, labels[:, ::4, ::4], 5.0, 1.0)
    assert torch.equal(terms["kd"], lgkd)
    pod = cl.pod_loss(new.pod_features(), old.pod_features(), 16, 5, 0.01, 0.0005)
    assert torch.equal(terms["pod"], pod)
    sum(terms.values()).backward()
    assert cl.recipe("plop_lgkd", "ade20k", "100-50").pod == cl.PODWeights(0.001, 0.00001)
    assert cl.recipe("plop", "ade20k", "100-50").pod == cl.PODWeights(0.01, 0.0005)

    step0 = cl.loss_terms(cl.recipe("plop", "voc", "15-5"), new, None, labels)
    assert list(step0) == ["ce"] and torch.equal(step0["ce"], cl.cross_entropy(new.logits, labels))
    with pytest.raises(ConfigError, match="pseudo"):
        cl.loss_terms(cl.recipe("plop", "voc", "15-5"), new, old, labels)
    with pytest.raises(ConfigError, match="lgkd_weights"):
        cl.recipe("mib_lgkd", "voc", "10-1")
    assert cl.recipe("mib_lgkd", "voc", "10-1", prev=2, novel=1).lgkd.prev == 2
    with pytest.raises(ConfigError, match="unknown method"):
        cl.recipe("ewc", "voc", "15-5")
