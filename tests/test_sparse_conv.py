"""Sparse conv vs dense ``conv3d`` / ``conv_transpose3d`` on small random grids."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from kdseg.errors import ConfigError
from kdseg.sparse import (
    BatchNorm,
    Conv3d,
    PhaseProfiler,
    ReLU,
    SparseTensor,
    cat,
    resolve_backend,
    sparse_conv3d,
    use_backend,
)
from kdseg.sparse.kmap import (
    AXIS_MAX,
    AXIS_MIN,
    KeyIndex,
    downsample_coords,
    downsample_kmap,
    encode_keys,
    strided_kmap,
    submanifold_kmap,
)

GRID = 12
BATCH = 2


def random_sites(n_per_batch: int, seed: int, grid: int = GRID) -> torch.Tensor:
    """``(B * n, 4)`` unique int32 coords in a ``grid^3`` box, batch-major, in random order."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for b in range(BATCH):
        flat = torch.randperm(grid**3, generator=g)[:n_per_batch]
        xyz = torch.stack([flat // grid**2, (flat // grid) % grid, flat % grid], dim=1)
        rows.append(torch.cat([torch.full((n_per_batch, 1), b), xyz], dim=1))
    coords = torch.cat(rows)
    return coords[torch.randperm(coords.shape[0], generator=g)].to(torch.int32)


def to_dense(feats: torch.Tensor, coords: torch.Tensor, grid: int) -> torch.Tensor:
    """``(B, C, G, G, G)`` dense volume with ``feats`` at ``coords``."""
    dense = feats.new_zeros((BATCH, feats.shape[1], grid, grid, grid))
    c = coords.long()
    dense[c[:, 0], :, c[:, 1], c[:, 2], c[:, 3]] = feats
    return dense


def at_sites(dense: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    c = coords.long()
    return dense[c[:, 0], :, c[:, 1], c[:, 2], c[:, 3]]


def dense_weight(weight: torch.Tensor, k: int) -> torch.Tensor:
    """``(K^3, C_in, C_out)`` -> ``conv3d`` layout ``(C_out, C_in, K, K, K)``."""
    return weight.reshape(k, k, k, weight.shape[1], weight.shape[2]).permute(4, 3, 0, 1, 2)


@pytest.mark.parametrize("kernel", [1, 3])
def test_submanifold_matches_masked_dense_conv(kernel: int) -> None:
    torch.manual_seed(0)
    coords = random_sites(300, seed=1)
    feats = torch.randn(coords.shape[0], 5, dtype=torch.float64)
    conv = Conv3d(5, 7, kernel_size=kernel, bias=True).double()
    out = conv(SparseTensor(feats, coords))
    ref = F.conv3d(
        to_dense(feats, coords, GRID),
        dense_weight(conv.weight, kernel),
        conv.bias,
        padding=(kernel - 1) // 2,
    )
    assert torch.equal(out.coords, coords)
    torch.testing.assert_close(out.feats, at_sites(ref, coords), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("kernel", [2, 3])
def test_strided_matches_dense_conv_at_output_sites(kernel: int) -> None:
    torch.manual_seed(0)
    coords = random_sites(300, seed=2)
    feats = torch.randn(coords.shape[0], 4, dtype=torch.float32)
    conv = Conv3d(4, 6, kernel_size=kernel, stride=2)
    out = conv(SparseTensor(feats, coords))
    expected_sites = torch.unique(
        torch.div(coords.long(), torch.tensor([1, 2, 2, 2]), rounding_mode="floor"), dim=0
    )
    assert out.stride == (2, 2, 2)
    assert torch.equal(out.coords.long(), expected_sites)
    ref = F.conv3d(
        to_dense(feats, coords, GRID),
        dense_weight(conv.weight, kernel),
        stride=2,
        padding=(kernel - 1) // 2,
    )
    torch.testing.assert_close(out.feats, at_sites(ref, out.coords), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel", [2, 3])
def test_transposed_matches_dense_conv_transpose_at_fine_sites(kernel: int) -> None:
    torch.manual_seed(0)
    coords = random_sites(250, seed=3)
    x = SparseTensor(torch.randn(coords.shape[0], 3), coords)
    coarse = Conv3d(3, 4, kernel_size=kernel, stride=2)(x)
    coarse = coarse.replace_feats(torch.randn(coarse.coords.shape[0], 4))
    up = Conv3d(4, 5, kernel_size=kernel, stride=2, transposed=True)
    out = up(coarse)
    assert out.coords is coords and out.stride == (1, 1, 1)
    half = GRID // 2
    p = (kernel - 1) // 2
    ref = F.conv_transpose3d(
        to_dense(coarse.feats, coarse.coords, half),
        up.weight.reshape(kernel, kernel, kernel, 4, 5).permute(3, 4, 0, 1, 2),
        stride=2,
        padding=p,
        output_padding=2 * half - ((half - 1) * 2 - 2 * p + kernel),
    )
    torch.testing.assert_close(out.feats, at_sites(ref, coords), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("c_in", "c_out"), [(6, 5), (8, 4)])
@pytest.mark.parametrize(
    ("kernel", "stride", "transposed"), [(3, 1, False), (2, 2, False), (3, 2, False), (2, 2, True)]
)
def test_float32_values_and_gradients_match_dense(
    kernel: int, stride: int, transposed: bool, c_in: int, c_out: int
) -> None:
    """The float32 CPU path (CSR scatter) against dense conv3d / conv_transpose3d, with grads."""
    torch.manual_seed(0)
    coords = random_sites(400, seed=8)
    base = SparseTensor(torch.zeros(coords.shape[0], 1), coords)
    if transposed:
        base = Conv3d(1, 1, kernel, stride=2)(base)
    feats = torch.randn(base.coords.shape[0], c_in, requires_grad=True)
    weight = (0.3 * torch.randn(kernel**3, c_in, c_out)).requires_grad_()
    out = sparse_conv3d(base.replace_feats(feats), weight, kernel, stride, transposed=transposed)
    probe = torch.randn_like(out.feats)
    grads = torch.autograd.grad((out.feats * probe).sum(), (feats, weight))

    d_feats = feats.detach().clone().requires_grad_()
    d_weight = weight.detach().clone().requires_grad_()
    p = (kernel - 1) // 2
    if transposed:
        half = GRID // 2
        ref = F.conv_transpose3d(
            to_dense(d_feats, base.coords, half),
            d_weight.reshape(kernel, kernel, kernel, c_in, c_out).permute(3, 4, 0, 1, 2),
            stride=2,
            padding=p,
            output_padding=2 * half - ((half - 1) * 2 - 2 * p + kernel),
        )
    else:
        ref = F.conv3d(
            to_dense(d_feats, base.coords, GRID),
            dense_weight(d_weight, kernel),
            stride=stride,
            padding=p,
        )
    ref_out = at_sites(ref, out.coords)
    ref_grads = torch.autograd.grad((ref_out * probe).sum(), (d_feats, d_weight))
    torch.testing.assert_close(out.feats, ref_out, atol=1e-5, rtol=1e-5)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("kernel", "stride", "transposed"), [(3, 1, False), (2, 2, False), (3, 2, True)]
)
def test_gradcheck(kernel: int, stride: int, transposed: bool) -> None:
    coords = random_sites(20, seed=4, grid=4)
    base = SparseTensor(torch.zeros(coords.shape[0], 1, dtype=torch.float64), coords)
    if transposed:
        base = Conv3d(1, 1, kernel, stride=2).double()(base)
    n = base.coords.shape[0]
    feats = torch.randn(n, 2, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(kernel**3, 2, 3, dtype=torch.float64, requires_grad=True)

    def fn(f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return sparse_conv3d(base.replace_feats(f), w, kernel, stride, transposed=transposed).feats

    assert torch.autograd.gradcheck(fn, (feats, weight))


def test_kernel_maps_are_cached_and_shared_by_transposed_conv() -> None:
    coords = random_sites(200, seed=5)
    x = SparseTensor(torch.randn(coords.shape[0], 2), coords)
    sub = Conv3d(2, 2)
    down = Conv3d(2, 2, kernel_size=2, stride=2)
    up = Conv3d(2, 2, kernel_size=2, stride=2, transposed=True)
    with PhaseProfiler() as prof:
        y = sub(sub(x))
        calls_after_sub = prof.calls["kmap"]
        z = up(down(y))
        assert prof.calls["kmap"] == calls_after_sub + 1  # the strided map; up reuses it
        sub(z)
        assert prof.calls["kmap"] == calls_after_sub + 1
    assert len(x.cache.kmaps) == 2


def test_unet_skip_helpers_and_pointwise_layers() -> None:
    coords = random_sites(100, seed=6)
    x = SparseTensor(torch.randn(coords.shape[0], 3), coords)
    y = ReLU()(BatchNorm(3)(x))
    assert (y.feats >= 0).all() and y.coords is coords
    assert cat([x, y]).feats.shape == (coords.shape[0], 6)
    coarse = Conv3d(3, 3, kernel_size=2, stride=2)(x)
    with pytest.raises(ValueError, match="different coordinate sets"):
        cat([x, coarse])


def test_downsample_coords_are_unique_floor() -> None:
    coords = torch.tensor([[0, -1, 0, 3], [0, -2, 1, 2], [1, -1, 0, 3], [0, 5, 5, 5]])
    down = downsample_coords(coords)
    assert down.tolist() == [[0, -1, 0, 1], [0, 2, 2, 2], [1, -1, 0, 1]]


def test_keys_preserve_batch_major_order() -> None:
    coords = torch.tensor([[1, -5, 0, 0], [0, 7, 7, 7], [0, 7, 7, 8], [0, -9, 100, 0]])
    assert torch.argsort(encode_keys(coords)).tolist() == [3, 1, 2, 0]


@pytest.mark.parametrize(
    ("feats", "coords", "message"),
    [
        (torch.zeros(3, 2), torch.zeros(3, 3, dtype=torch.int32), "must be \\(N, 4\\)"),
        (torch.zeros(2, 2), torch.tensor([[-1, 0, 0, 0], [0, 1, 1, 1]]), "negative batch"),
        (torch.zeros(3, 2), torch.zeros(2, 4, dtype=torch.int32), "3 rows but coords has 2"),
        (torch.zeros(1, 2), torch.tensor([[0, AXIS_MAX + 1, 0, 0]]), "x range .* overflows"),
        (torch.zeros(1, 2), torch.tensor([[0, 0, 0, 0]], dtype=torch.float32), "int32 or int64"),
        (torch.zeros(1, 2, dtype=torch.int64), torch.tensor([[0, 0, 0, 0]]), "floating point"),
    ],
)
def test_bad_input_raises_clear_error(
    feats: torch.Tensor, coords: torch.Tensor, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SparseTensor(feats, coords)


def test_bad_conv_arguments() -> None:
    x = SparseTensor(torch.zeros(2, 3), torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0]]))
    with pytest.raises(ValueError, match="odd kernel"):
        Conv3d(3, 3, kernel_size=2)
    with pytest.raises(ValueError, match="dilation"):
        Conv3d(3, 3, dilation=2)
    with pytest.raises(ValueError, match="weight must be"):
        Conv3d(4, 3)(x)
    with pytest.raises(ValueError, match="not divisible"):
        Conv3d(3, 3, kernel_size=2, stride=2, transposed=True)(x)
    coarse = SparseTensor(x.feats, x.coords, stride=2)
    with pytest.raises(ValueError, match="no strided conv"):
        Conv3d(3, 3, kernel_size=2, stride=2, transposed=True)(coarse)


def test_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv("KDSEG_SPARSE_BACKEND", raising=False)
    assert resolve_backend("auto", cpu) == "torch"
    assert resolve_backend("torch", cuda) == "torch"
    spconv_here = importlib.util.find_spec("spconv") is not None
    assert resolve_backend("auto", cuda) == ("spconv" if spconv_here else "torch")
    with pytest.raises(ConfigError, match="unknown backend 'nope'"):
        resolve_backend("nope")
    with pytest.raises(ConfigError, match="torchsparse"):
        resolve_backend("torchsparse")
    monkeypatch.setenv("KDSEG_SPARSE_BACKEND", "torch")
    assert resolve_backend(None, cuda) == "torch"
    with use_backend("auto"):
        assert resolve_backend(None, cuda) == ("spconv" if spconv_here else "torch")


@pytest.fixture
def spconv_one_thread() -> Iterator[Any]:
    """``spconv.pytorch`` with one torch thread (spconv on CPU is wrong with more, docs/sparse.md);
    skips when spconv is not installed."""
    if importlib.util.find_spec("spconv") is None:
        pytest.skip("spconv is not installed")
    import spconv.pytorch as spconv

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield spconv
    torch.set_num_threads(threads)


def test_matches_spconv_submanifold_single_thread(spconv_one_thread: Any) -> None:
    spconv = spconv_one_thread
    coords = random_sites(300, seed=7)
    feats = torch.randn(coords.shape[0], 4)
    ours = Conv3d(4, 5)
    ref = spconv.SubMConv3d(4, 5, 3, bias=False)
    with torch.no_grad():
        ref.weight.copy_(ours.weight.reshape(3, 3, 3, 4, 5).permute(4, 0, 1, 2, 3))
    x = spconv.SparseConvTensor(feats, coords, [GRID] * 3, BATCH)
    got = ref(x)
    order = torch.argsort(encode_keys(got.indices.long()))
    mine = ours(SparseTensor(feats, coords))
    mine_order = torch.argsort(encode_keys(coords.long()))
    torch.testing.assert_close(got.features[order], mine.feats[mine_order], atol=1e-5, rtol=1e-5)


def test_downsample_kmap_equals_the_searched_strided_map() -> None:
    coords = random_sites(300, seed=9).long()
    down, fast = downsample_kmap(coords, 2)
    assert torch.equal(down, downsample_coords(coords))
    slow = strided_kmap(KeyIndex.build(coords), coords.shape[0], down, 2, 2)
    assert fast.bounds == slow.bounds
    for k in range(8):
        a = sorted(zip(*(t.tolist() for t in fast.pairs(k)), strict=True))
        b = sorted(zip(*(t.tolist() for t in slow.pairs(k)), strict=True))
        assert a == b


def test_kernel_map_near_the_key_budget_edge() -> None:
    """Centres at the edge of the key budget take the checked path: no wrapped neighbours."""
    coords = torch.tensor([[0, AXIS_MAX, 0, 0], [0, AXIS_MAX - 1, 0, 0], [1, AXIS_MIN, 0, 0]])
    kmap = submanifold_kmap(coords, KeyIndex.build(coords), 3)
    pairs = set(zip(kmap.in_idx.tolist(), kmap.out_idx.tolist(), strict=True))
    assert pairs == {(0, 0), (1, 1), (2, 2), (0, 1), (1, 0)}


def test_matches_spconv_strided_single_thread(spconv_one_thread: Any) -> None:
    spconv = spconv_one_thread
    coords = random_sites(300, seed=10)
    feats = torch.randn(coords.shape[0], 3)
    ours = Conv3d(3, 4, kernel_size=2, stride=2)
    ref = spconv.SparseConv3d(3, 4, 2, stride=2, bias=False)
    with torch.no_grad():
        ref.weight.copy_(ours.weight.reshape(2, 2, 2, 3, 4).permute(4, 0, 1, 2, 3))
    got = ref(spconv.SparseConvTensor(feats, coords, [GRID] * 3, BATCH))
    mine = ours(SparseTensor(feats, coords))
    order = torch.argsort(encode_keys(got.indices.long()))
    assert torch.equal(got.indices.long()[order], mine.coords.long())  # key-sorted already
    torch.testing.assert_close(got.features[order], mine.feats, atol=1e-5, rtol=1e-5)


@pytest.mark.usefixtures("spconv_one_thread")
def test_spconv_backend_runs_a_minkunet_like_the_torch_backend() -> None:
    """The spconv adapter (meant for CUDA) on the CPU at one thread: same network outputs."""
    from kdseg.models import SegNet, build_backbone

    torch.manual_seed(0)
    net = SegNet(build_backbone("minkunet_tiny"), 7).eval()
    coords = random_sites(300, seed=11)
    feats = torch.randn(coords.shape[0], 4)
    with torch.no_grad():
        ref_feats, ref_logits = net(SparseTensor(feats, coords))
        with use_backend("spconv"):
            got_feats, got_logits = net(SparseTensor(feats, coords))
    torch.testing.assert_close(got_logits, ref_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_feats, ref_feats, atol=1e-4, rtol=1e-4)


@pytest.mark.usefixtures("spconv_one_thread")
def test_spconv_backend_refuses_what_it_cannot_do() -> None:
    coords = random_sites(50, seed=12)
    x = SparseTensor(torch.randn(coords.shape[0], 2), coords)
    torch.set_num_threads(2)  # the fixture restores the caller's count
    with use_backend("spconv"), pytest.raises(RuntimeError, match="one torch thread"):
        Conv3d(2, 2)(x)
    torch.set_num_threads(1)
    with use_backend("spconv"), pytest.raises(ValueError, match="kernel == stride"):
        Conv3d(2, 2, kernel_size=3, stride=2)(x)
    neg = SparseTensor(torch.randn(1, 2), torch.tensor([[0, -1, 0, 0]]))
    with use_backend("spconv"), pytest.raises(ValueError, match="non-negative"):
        Conv3d(2, 2)(neg)
