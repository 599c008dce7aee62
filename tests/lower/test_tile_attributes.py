"""Tile attributes mean what Helion's mean, compiled (Triton's CPU interpreter) and interpreted alike.

`t.count` is the number of tiles of the loop dimension (cdiv(end - begin, block)), not the lanes of
`t`; `t.id` is `t.begin // block_size`; `t.end` is clipped to the loop's end. The expected values are
computed here in plain Python from the loop bounds and the block size.
"""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl

I32 = torch.int32
pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
ATTRS = ("index", "begin", "end", "id", "block_size", "count")


def attributes(x, begin: int):
    n = x.size(0)
    out = torch.full([len(ATTRS), n], -1, dtype=torch.int32, device=x.device)
    for t in tl.tile(begin, n):
        out[0, t] = t.index
        out[1, t] = t.begin
        out[2, t] = t.end
        out[3, t] = t.id
        out[4, t] = t.block_size
        out[5, t] = t.count
    return out


def expected_attributes(n, begin, block):
    out = torch.full([len(ATTRS), n], -1, dtype=I32)
    count = -(-(n - begin) // block)
    for start in range(begin, n, block):
        stop = min(start + block, n)
        out[:, start:stop] = torch.tensor([0, start, stop, start // block, block, count], dtype=I32)[:, None]
        out[0, start:stop] = torch.arange(start, stop, dtype=I32)
    return out


@pytest.mark.parametrize("n,begin,block", [(100, 0, 64), (97, 10, 32), (16, 0, 16), (37, 3, 8), (5, 5, 4)])
def test_attributes_match_helion_compiled_and_interpreted(n, begin, block):
    x = torch.randn(n)
    config = tfn.Config(block_sizes=[block])
    expected = expected_attributes(n, begin, block)
    assert torch.equal(tfn.interpret(attributes, config=config)(x, begin), expected)
    assert torch.equal(tfn.jit(attributes, config=config)(x, begin), expected)


def count_of_inner_loop(x, bounds):
    rows = x.size(0)
    out = torch.zeros([rows], dtype=torch.int32, device=x.device)
    for tr in tl.tile(rows):
        begin, end = bounds[0], bounds[1]  # device scalars: the loop's bounds are runtime values
        total = tl.zeros([tr], dtype=torch.int32)
        for tc in tl.tile(begin, end):
            total = total + tc.count
        out[tr] = total
    return out


@pytest.mark.parametrize("begin,end,block", [(3, 30, 8), (0, 16, 16), (5, 6, 4)])
def test_count_of_a_loop_with_runtime_bounds(begin, end, block):
    x = torch.randn(4)
    bounds = torch.tensor([begin, end], dtype=torch.int32)
    tiles = -(-(end - begin) // block)
    expected = torch.full([4], tiles * tiles, dtype=I32)  # each of the `tiles` iterations adds `tiles`
    config = tfn.Config(block_sizes=[4, block])
    assert torch.equal(tfn.interpret(count_of_inner_loop, config=config)(x, bounds), expected)
    assert torch.equal(tfn.jit(count_of_inner_loop, config=config)(x, bounds), expected)


def test_count_is_not_the_lanes_of_a_ragged_tile():
    """37 elements in blocks of 8: the last tile has 5 lanes, and every tile's count is 5 tiles."""
    x = torch.randn(37)
    got = tfn.jit(attributes, config=tfn.Config(block_sizes=[8]))(x, 0)
    assert got[5].tolist() == [5] * 37
    assert (got[2] - got[1]).tolist() == [8] * 32 + [5] * 5
