"""Mask elimination: a tile whose block size divides its static extent, or a full slice of a
power-of-two size, needs no mask; every other edge is masked, and masked lanes are never stored."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tilefn as tfn
from tilefn import lang as tl
from tilefn.lower.masks import analyze_masks
from tilefn.trace.ir import walk_eqns

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def copy(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t]
    return out


def offset_copy(x):
    out = torch.zeros_like(x)
    for t in tl.tile(3, x.shape[0]):
        out[t] = x[t]
    return out


def jagged(values, offsets):
    out = torch.empty([offsets.shape[0] - 1], dtype=torch.float32, device=values.device)
    for r in tl.grid(offsets.shape[0] - 1):
        acc = tl.zeros([], dtype=torch.float32)
        for tv in tl.tile(offsets[r], offsets[r + 1]):
            acc = acc + torch.sum(values[tv])
        out[r] = acc
    return out


def rows(x):
    out = torch.empty([x.shape[0]], dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.shape[0]):
        out[tm] = torch.amax(x[tm, :], dim=1)
    return out


def scale_in_place(x):
    for tm, tn in tl.tile(x.shape):
        x[tm, tn] = x[tm, tn] * 2
    return x


def tile_dims(program):
    return [dim for e in walk_eqns(program.eqns) if e.prim.name == "loop" for kind, dim in e.params["dims"]
            if kind == "tile"]


# --- the analysis ------------------------------------------------------------------------------
@pytest.mark.parametrize("extent, block, needed", [(64, 16, False), (64, 64, False), (50, 16, True),
                                                   (64, 128, True), (1, 1, False), (48, 32, True)])
def test_static_tile_needs_a_mask_iff_the_block_does_not_divide_the_extent(extent, block, needed):
    program = tfn.make_ir(copy)(torch.randn(extent))
    (dim,) = tile_dims(program)
    assert analyze_masks(program).needs_mask(dim, tfn.Config(block_sizes=[block])) is needed


def test_tile_with_a_static_begin_uses_the_length_of_its_range():
    program = tfn.make_ir(offset_copy)(torch.randn(35))  # tile(3, 35): 32 indices
    (dim,) = tile_dims(program)
    masks = analyze_masks(program)
    assert not masks.needs_mask(dim, tfn.Config(block_sizes=[16]))
    assert masks.needs_mask(dim, tfn.Config(block_sizes=[64]))


def test_tile_with_device_bounds_always_needs_a_mask():
    program = tfn.make_ir(jagged)(torch.randn(10), torch.tensor([0, 4, 10]))
    (dim,) = tile_dims(program)
    for block in (1, 2, 4, 16):
        assert analyze_masks(program).needs_mask(dim, tfn.Config(block_sizes=[block]))


def test_program_without_kernel_has_no_tiles():
    assert analyze_masks(tfn.make_ir(lambda x: x + 1)(torch.randn(3))).bounds == {}


# --- in the source -----------------------------------------------------------------------------
def source(fn, *args, blocks):
    return tfn.jit(fn).lower(*args, config=tfn.Config(block_sizes=blocks)).kernel.kernel


def test_offset_tile_source():
    assert "mask" not in source(offset_copy, torch.randn(35), blocks=[16])
    src = source(offset_copy, torch.randn(35), blocks=[8 * 8])
    assert "off_t = 3 + (pid) * BLOCK_T" in src and "mask_t = offs_t < 35" in src


def test_jagged_tile_masks_against_its_device_end():
    src = source(jagged, torch.randn(10), torch.tensor([0, 4, 10]), blocks=[8])
    assert "mask_tv = offs_tv < v_" in src


def test_full_slice_of_a_power_of_two_needs_no_mask():
    src = source(rows, torch.randn(16, 32), blocks=[8])
    assert "mask" not in src and "tl.arange(0, 32)" in src
    assert "tl.where((" not in src  # no masking select (the interpreter's NaN-propagating max has one of its own)


def test_full_slice_of_another_size_is_padded_to_a_power_of_two_and_masked():
    src = source(rows, torch.randn(16, 20), blocks=[8])
    assert "tl.arange(0, 32)" in src
    assert "(tl.arange(0, 32) < 20)" in src
    assert "mask_tm" not in src


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 80), n=st.integers(1, 80), bm=st.sampled_from([1, 4, 16, 32, 64, 128]),
       bn=st.sampled_from([1, 2, 8, 16, 64]))
def test_mask_lines_appear_exactly_for_ragged_dimensions(m, n, bm, bn):
    def copy2d(x):
        out = torch.empty_like(x)
        for tm, tn in tl.tile(x.shape):
            out[tm, tn] = x[tm, tn]
        return out

    src = source(copy2d, torch.randn(m, n), blocks=[bm, bn])
    assert (f"mask_tm = offs_tm < {m}" in src) is (m % bm != 0)
    assert (f"mask_tn = offs_tn < {n}" in src) is (n % bn != 0)
    assert ("mask=" in src) is (m % bm != 0 or n % bn != 0)


# --- numerics: masked lanes are never stored ---------------------------------------------------
@settings(max_examples=12, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 40), bm=st.sampled_from([4, 8, 16, 64]),
       bn=st.sampled_from([4, 8, 16, 64]), pad=st.integers(0, 3))
def test_stores_stay_inside_a_view_of_a_bigger_buffer(m, n, bm, bn, pad):
    """Writing in place into a strided view: the buffer around the view keeps its canary values."""
    buffer = torch.full((m + 2 * pad + 1, n + 2 * pad + 1), -7.0)
    view = buffer[pad:pad + m, pad:pad + n]
    view.copy_(torch.randn(m, n))
    expected = buffer.clone()
    expected[pad:pad + m, pad:pad + n] *= 2
    tfn.jit(scale_in_place).lower(view, config=tfn.Config(block_sizes=[bm, bn])).compile()(view)
    assert torch.equal(buffer, expected)


@pytest.mark.parametrize("reduce", [torch.amax, torch.amin, torch.sum])
def test_reductions_of_ragged_rows_ignore_the_padding(reduce):
    """All-negative rows for max, all-positive for min: a 0 from padding would win."""
    def kernel(x):
        out = torch.empty([x.shape[0]], dtype=x.dtype, device=x.device)
        for tm in tl.tile(x.shape[0]):
            out[tm] = reduce(x[tm, :] - 3 if reduce is torch.amax else x[tm, :] + 3, dim=1)
        return out

    x = torch.rand(9, 5)
    expected = reduce(x - 3 if reduce is torch.amax else x + 3, dim=1)
    torch.testing.assert_close(tfn.jit(kernel, config=tfn.Config(block_sizes=[4]))(x), expected)
