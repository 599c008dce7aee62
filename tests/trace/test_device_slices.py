"""Slices and aranges whose bounds are device values and whose length is int arithmetic on block sizes
(Helion's `x[s : s + tile.block_size * 2]`, `hl.arange(t.begin * 2, t.begin * 2 + t.block_size * 2)`):
compiled (Triton's CPU interpreter), tfn.interpret and eager torch agree under drawn Configs."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as hs

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import ShapeError
from tilefn.testing import assert_matches, compile_for_gpu


def doubled_arange(x):
    """out[i] = i for the 2n positions, each tile writing its 2 * block_size of them."""
    out = torch.zeros([x.size(0) * 2], dtype=torch.int32, device=x.device)
    for tile in tl.tile(x.size(0)):
        indices = tl.arange(tile.begin * 2, tile.begin * 2 + tile.block_size * 2)
        out[indices] = indices
    return out


def doubled_slice(x, y):
    """y + 1, each tile reading and writing a slice of 2 * block_size lanes (the last one past y's end)."""
    out = torch.zeros_like(y)
    for tile in tl.tile(x.size(0)):
        start = tile.begin * 2
        stop = start + tile.block_size * 2
        out[start:stop] = y[start:stop] + 1
    return out


def strided_block_arange(x):
    """Every second position of a tile's doubled range (a step on a block-size length)."""
    out = torch.zeros([x.size(0) * 2], dtype=torch.int32, device=x.device)
    for tile in tl.tile(x.size(0)):
        indices = tl.arange(tile.begin * 2, tile.begin * 2 + 2 * tile.block_size, 2)
        out[indices] = indices + 1
    return out


def tile_arange(x):
    """Helion's test_arange_two_args / three_args_step: an arange of block-size length stored into out[tile]."""
    out = torch.zeros([x.size(0), 2], dtype=torch.int32, device=x.device)
    for tile in tl.tile(x.size(0)):
        out[tile, 0] = torch.arange(tile.begin, tile.begin + tile.block_size, device=x.device)
        out[tile, 1] = torch.arange(tile.begin * 2, (tile.begin + tile.block_size) * 2, step=2, device=x.device)
    return out


def _tile_arange(x):
    rows = torch.arange(x.size(0), dtype=torch.int32)
    return torch.stack([rows, rows * 2], dim=1)


def _strided(x):
    out = torch.zeros(2 * x.size(0), dtype=torch.int32)
    out[::2] = torch.arange(0, 2 * x.size(0), 2, dtype=torch.int32) + 1
    return out


@settings(max_examples=8, deadline=None)
@given(data=hs.data(), n=hs.integers(1, 40))
def test_block_size_lengths_of_aranges_and_slices(data, n):
    x, y = torch.randn(n), torch.randn(2 * n)
    assert_matches(doubled_arange, lambda x: torch.arange(2 * x.size(0), dtype=torch.int32), x,
                   configs=[data.draw(tt.configs(doubled_arange, x))])
    assert_matches(doubled_slice, lambda x, y: y + 1, x, y, configs=[data.draw(tt.configs(doubled_slice, x, y))])
    assert_matches(strided_block_arange, _strided, x, configs=[data.draw(tt.configs(strided_block_arange, x))])
    assert_matches(tile_arange, _tile_arange, x, configs=[data.draw(tt.configs(tile_arange, x))])


def test_the_program_is_keyed_on_the_block_size_it_read():
    x = torch.randn(24)
    for block in (4, 8, 4, 16):
        got = tfn.interpret(doubled_arange, config=tfn.Config(block_sizes=[block]))(x)
        torch.testing.assert_close(got, torch.arange(48, dtype=torch.int32))
    text = str(tfn.make_ir(doubled_arange)(x))
    assert "host code computed with" in text and "iota" in text


def test_block_size_lengths_compile_for_sm90():
    compile_for_gpu(doubled_arange, torch.randn(40))
    compile_for_gpu(tile_arange, torch.randn(40))
    compile_for_gpu(doubled_slice, torch.randn(40), torch.randn(80), config=tfn.Config(block_sizes=[16]))


def test_a_length_computed_from_loaded_values_points_at_jagged_tiles():
    def loaded_bounds(x, offsets):
        out = torch.zeros([offsets.size(0) - 1], dtype=x.dtype, device=x.device)
        for i in tl.grid(offsets.size(0) - 1):
            out[i] = x[offsets[i]:offsets[i + 1]].sum()  # loaded-bounds
        return out

    def loaded_arange(x, offsets):
        out = torch.zeros_like(x)
        for i in tl.grid(offsets.size(0) - 1):
            idx = tl.arange(offsets[i], offsets[i + 1])  # loaded-arange
            out[idx] = x[idx]
        return out

    x, offsets = torch.randn(10), torch.tensor([0, 3, 10])
    for kernel, marker in ((loaded_bounds, "loaded-bounds"), (loaded_arange, "loaded-arange")):
        with pytest.raises(ShapeError, match="tl.jagged_tile") as info:
            tfn.make_ir(kernel)(x, offsets)
        assert info.value.source is not None and marker in info.value.source.excerpt()
