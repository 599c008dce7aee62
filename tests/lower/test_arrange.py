"""Lowering of stack / split / flip (tilefn/lower/arrange.py): the Triton forms they take, and their results."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl

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
