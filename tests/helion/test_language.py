"""tilefn.helion.language names added with issue 12: hl.split / hl.join, float8 hl.dot, hl.dot_scaled refused."""
from __future__ import annotations

import pytest
import torch

import tilefn.helion as helion
import tilefn.helion.language as hl

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Each (even, odd) pair of a row rotated by its angle, as Helion's rope example spells it."""
    m, n = x.size()
    out = torch.empty_like(x)
    for tile_m in hl.tile(m):
        even, odd = hl.split(x[tile_m, :].reshape([tile_m, n // 2, 2]))
        c, s = cos[tile_m, :], sin[tile_m, :]
        out[tile_m, :] = hl.join(even * c - odd * s, odd * c + even * s).reshape([tile_m, n])
    return out


def test_split_and_join_rotate_pairs_like_eager_torch():
    x, angle = torch.randn(6, 16), torch.rand(6, 8) * 6
    cos, sin = angle.cos(), angle.sin()
    got = helion.kernel(config=helion.Config(block_sizes=[4]))(rotate_pairs)(x, cos, sin)
    even, odd = x[:, 0::2], x[:, 1::2]
    expected = torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1).reshape(6, 16)
    torch.testing.assert_close(got, expected)


def test_split_and_join_are_exported_under_helions_names():
    assert {"split", "join"} <= set(hl.__all__)
    assert hl.split.__module__ == "tilefn.lang" and hl.join.__module__ == "tilefn.lang"


def segment_sum(lv, ls, rv, rs):
    return torch.where(ls == rs, lv + rv, rv), rs


def argmax_pair(left, right):
    take = (right[0] > left[0]) | ((right[0] == left[0]) & (right[1] < left[1]))
    return torch.where(take, right[0], left[0]), torch.where(take, right[1], left[1])


def scans_and_reductions(x: torch.Tensor, seg: torch.Tensor):
    """hl.associative_scan (a segmented sum, Helion's unpacked tuple form), hl.reduce (an argmax, the packed
    form), hl.cumsum/hl.cumprod reversed, as Helion's tests spell them."""
    m, n = x.size()
    seg_out, rev_sum, rev_prod = torch.empty_like(x), torch.empty_like(x), torch.empty_like(x)
    best, at = torch.empty([m], dtype=x.dtype), torch.empty([m], dtype=torch.int64)
    for tile_m in hl.tile(m):
        row = x[tile_m, :]
        ids = seg[tile_m, :]
        seg_out[tile_m, :], _ = hl.associative_scan(segment_sum, (row, ids), dim=1)
        rev_sum[tile_m, :] = hl.cumsum(row, dim=1, reverse=True)
        rev_prod[tile_m, :] = hl.cumprod(row * 0.1 + 1, dim=1, reverse=True)
        index = torch.arange(n, dtype=torch.int64)[None, :].expand_as(row)
        best[tile_m], at[tile_m] = hl.reduce(argmax_pair, (row, index), dim=1)
    return seg_out, rev_sum, rev_prod, best, at


def eager_scans_and_reductions(x, seg):
    seg_out = torch.empty_like(x)
    for i in range(x.shape[0]):
        acc = None
        for j in range(x.shape[1]):
            acc = x[i, j] if j == 0 or seg[i, j] != seg[i, j - 1] else acc + x[i, j]
            seg_out[i, j] = acc
    return (seg_out, x.flip(1).cumsum(1).flip(1), (x * 0.1 + 1).flip(1).cumprod(1).flip(1), *x.max(1))


@pytest.mark.parametrize("block", [2, 8])
def test_scans_and_reductions_with_combine_functions_match_eager_torch(block):
    x = torch.randn(6, 13)  # 13 columns in 16 lanes: padding must not reach a reversed scan or the reduction
    seg = torch.randint(0, 2, (6, 13)).cumsum(1).float()
    got = helion.kernel(config=helion.Config(block_sizes=[block]))(scans_and_reductions)(x, seg)
    for g, w in zip(got, eager_scans_and_reductions(x, seg)):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_scan_and_reduce_are_exported_under_helions_names():
    assert {"associative_scan", "reduce", "cumsum", "cumprod"} <= set(hl.__all__)
    with pytest.raises(TypeError):  # a real function now (it needs its arguments), not a not-implemented stub
        hl.associative_scan()


def fp8_matmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Helion's fp8_gemm, as its example spells it: float8 tiles into a float32 acc, a float16 result."""
    m, k = x.size()
    _, n = y.size()
    out = torch.empty([m, n], dtype=torch.float16, device=x.device)
    for tile_m, tile_n in hl.tile([m, n]):
        acc = hl.zeros([tile_m, tile_n], dtype=torch.float32)
        for tile_k in hl.tile(k):
            acc = hl.dot(x[tile_m, tile_k], y[tile_k, tile_n], acc=acc)
        out[tile_m, tile_n] = acc.to(torch.float16)
    return out


def test_a_helion_fp8_gemm_runs_like_eager_torch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 48, generator=g).to(torch.float8_e4m3fn)
    y = torch.randn(48, 40, generator=g).to(torch.float8_e4m3fn).T.contiguous().T  # (column-major, as Helion's)
    got = helion.kernel(config=helion.Config(block_sizes=[32, 32, 32]))(fp8_matmul)(x, y)
    torch.testing.assert_close(got, (x.float() @ y.float()).half())


def dot_scaled_kernel(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    out = torch.empty([x.size(0), x.size(0)], dtype=torch.float32, device=x.device)
    for tile_m in hl.tile(x.size(0)):
        out[tile_m, :] = hl.dot_scaled(x[tile_m, :], scale[tile_m, :], "e4m3", x[:, :].T, scale[:, :], "e4m3")
    return out


def test_dot_scaled_is_a_clear_error_pointing_at_hl_dot():
    x, scale = torch.randn(32, 32).to(torch.float8_e4m3fn), torch.full((32, 1), 127, dtype=torch.uint8)
    with pytest.raises(NotImplementedError, match=r"dot_scaled has no tilefn counterpart yet: .*sm_100.*hl.dot"):
        helion.kernel(config=helion.Config(block_sizes=[32]))(dot_scaled_kernel)(x, scale)


# --- floats: runtime values; hl.specialize and hl.constexpr compile them in ---------------------
def helion_layer_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Helion's layer_norm example, reduced: eps is a float argument."""
    m, n = x.size()
    out = torch.empty_like(x)
    for tile_m in hl.tile(m):
        row = x[tile_m, :].to(torch.float32)
        mean = row.mean(-1, keepdim=True)
        var = ((row - mean) ** 2).mean(-1, keepdim=True)
        out[tile_m, :] = ((row - mean) * torch.rsqrt(var + eps) * weight[None, :].to(torch.float32)).to(x.dtype)
    return out


def eager_layer_norm(x, weight, eps=1e-5):
    return torch.nn.functional.layer_norm(x.float(), [x.shape[1]], weight.float(), eps=eps).to(x.dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_helion_kernels_eps_is_a_runtime_value(dtype):
    kernel = helion.kernel(config=helion.Config(block_sizes=[4]))(helion_layer_norm)
    x, weight = torch.randn(10, 32, dtype=dtype), torch.randn(32, dtype=dtype)
    for eps in (1e-5, 1e-3, 0.1, 1.0):
        torch.testing.assert_close(kernel(x, weight, eps), eager_layer_norm(x, weight, eps))
    torch.testing.assert_close(kernel(x, weight), eager_layer_norm(x, weight))  # the default
    assert kernel.tuned.cache_info().compiles == 1


def helion_specialized(x: torch.Tensor, scale: float) -> torch.Tensor:
    scale = hl.specialize(scale)
    steps = int(scale)  # host code using the value: fine once it is static
    out = torch.zeros_like(x)
    for tile in hl.tile(x.size(0)):
        acc = x[tile]
        for _ in range(steps):
            acc = acc * scale
        out[tile] = acc
    return out


def test_hl_specialize_makes_a_float_static():
    kernel = helion.kernel(config=helion.Config(block_sizes=[8]))(helion_specialized)
    x = torch.randn(20)
    for scale in (2.0, 3.0, 2.0):
        torch.testing.assert_close(kernel(x, scale), x * scale ** int(scale))
    assert kernel.tuned.cache_info().compiles == 2


def helion_constexpr(x: torch.Tensor, scale: hl.constexpr) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(x.size(0)):
        out[tile] = x[tile] * scale
    return out


def test_a_float_annotated_constexpr_is_static():
    assert hl.constexpr_params(helion_constexpr) == ("scale",)
    kernel = helion.kernel(config=helion.Config(block_sizes=[8]))(helion_constexpr)
    x = torch.randn(20)
    for scale in (0.5, 1.5):
        torch.testing.assert_close(kernel(x, scale), x * scale)
    assert kernel.tuned.cache_info().compiles == 2
    assert "1.5" in kernel.bind((x, 1.5)).to_triton_code()
