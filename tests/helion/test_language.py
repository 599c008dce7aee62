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
