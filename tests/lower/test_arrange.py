"""Lowering of stack / cat / split / flip (tilefn/lower/arrange.py): the Triton forms they take, and their results."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.testing import compile_for_gpu

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def flip_rows(x):
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = x[tm, :].flip(1)
    return out


def flip_tiles(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t].flip(0)
    return out


def run(fn, x, blocks):
    lowered = tfn.jit(fn).lower(x, config=tfn.Config(block_sizes=blocks))
    return lowered.source, lowered.compile()(x)


def test_flip_of_a_power_of_two_row_is_tl_flip():
    x = torch.randn(3, 8)
    source, got = run(flip_rows, x, [4])
    assert "tl.flip(" in source and "tl.gather(" not in source
    assert torch.equal(got, x.flip(1))


def test_flip_of_a_padded_row_gathers_its_valid_lanes():
    x = torch.randn(3, 6)  # 6 elements in 8 lanes: tl.flip would move the 2 padding lanes to the front
    source, got = run(flip_rows, x, [4])
    assert "tl.gather(" in source
    assert torch.equal(got, x.flip(1))


@pytest.mark.parametrize("n, block, form", [(16, 8, "tl.flip("), (13, 8, "tl.gather("), (5, 8, "tl.gather(")])
def test_flip_of_a_tile_reverses_each_tile_in_place(n, block, form):
    x = torch.arange(n, dtype=torch.float32)
    source, got = run(flip_tiles, x, [block])
    assert form in source
    assert torch.equal(got, torch.cat([chunk.flip(0) for chunk in torch.split(x, block)]))


def stack3(x):
    out = torch.empty([*x.shape, 3], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile(x.shape):
        v = x[tm, tn]
        out[tm, tn, :] = torch.stack([v, v * 2, -v], dim=-1)
    return out


def test_stack_of_three_is_a_tree_of_joins_padded_with_zeros():
    x = torch.randn(5, 7)
    source, got = run(stack3, x, [4, 4])
    assert source.count("tl.join(") == 3 and "tl.zeros_like(" in source
    assert torch.equal(got, torch.stack([x, x * 2, -x], -1))


def split_join(x):
    lo, hi = torch.empty([x.shape[0], 4], dtype=x.dtype, device=x.device), torch.empty([x.shape[0], 4],
                                                                                        dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.shape[0]):
        a, b = tl.split(x[tm, :].reshape(tm, 4, 2))
        lo[tm, :], hi[tm, :] = a, b
    return lo, hi


def test_split_is_tl_split():
    x = torch.randn(6, 8)
    lowered = tfn.jit(split_join).lower(x, config=tfn.Config(block_sizes=[4]))
    assert "= tl.split(" in lowered.source
    lo, hi = lowered.compile()(x)
    assert torch.equal(lo, x[:, 0::2]) and torch.equal(hi, x[:, 1::2])


def cat_unequal_rows(x, y):
    """torch.cat of pieces of different sizes along the last dim (Helion's rope: halves of an odd row)."""
    out = torch.empty([x.shape[0], x.shape[1] + 3 + y.shape[1]], dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = torch.cat([x[tm, :] * 2, -x[tm, 0:3], y[tm, :]], dim=-1)
    return out


def cat_unequal_columns(x, y):
    out = torch.empty([x.shape[0] + y.shape[0], x.shape[1]], dtype=x.dtype, device=x.device)
    for tn in tl.tile(x.shape[1]):
        out[:, tn] = torch.cat([x[:, tn], y[:, tn] + 1], dim=0)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int32], ids=str)
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_cat_of_unequal_pieces_along_the_last_dim(dtype, data):
    rows, a, b = data.draw(tt.sizes(1, 40)), data.draw(st.integers(3, 12)), data.draw(st.integers(1, 9))
    x, y = data.draw(tt.tensors((rows, a), dtype)), data.draw(tt.tensors((rows, b), dtype))
    config = data.draw(tt.configs(cat_unequal_rows, x, y))
    tt.assert_matches(cat_unequal_rows, lambda x, y: torch.cat([x * 2, -x[:, 0:3], y], -1), x, y, configs=[config])


def test_cat_of_unequal_pieces_along_a_static_leading_dim():
    x, y = torch.randn(5, 33), torch.randn(2, 33)
    tt.assert_matches(cat_unequal_columns, lambda x, y: torch.cat([x, y + 1], 0), x, y, configs=2)


def test_cat_of_unequal_pieces_gathers_and_compiles_for_hopper():
    x, y = torch.randn(10, 5), torch.randn(10, 6)
    source = tfn.jit(cat_unequal_rows).lower(x, y, config=tfn.Config(block_sizes=[4])).source
    assert source.count("tl.gather(") == 3 and "tl.join(" not in source
    assert ".target sm_90" in compile_for_gpu(cat_unequal_rows, x, y).asm["ptx"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("block", [
    pytest.param(4, marks=pytest.mark.xfail(strict=True, reason="Triton 3.6 asserts (OptimizeThreadLocality: "
                                            "gather not warp-local) on a gather over fewer lanes than threads")),
    16, 64])
def test_cat_of_unequal_pieces_on_gpu(block):
    x, y = torch.randn(70, 5).cuda(), torch.randn(70, 6).cuda()
    got = tfn.jit(cat_unequal_rows, config=tfn.Config(block_sizes=[block]))(x, y)
    assert torch.equal(got, torch.cat([x * 2, -x[:, 0:3], y], -1))


def test_cat_of_equal_pieces_of_a_size_that_is_no_power_of_two():
    """Three pieces of width 3 (the draw that found it): gathers, not a stack and a reshape to 9 lanes."""
    x, y = torch.randn(5, 3), torch.randn(5, 3)
    tt.assert_matches(cat_unequal_rows, lambda x, y: torch.cat([x * 2, -x[:, 0:3], y], -1), x, y, configs=3)
