"""Indexing host tensors in tile loops: tiles that do not exactly cover their axis, offset and strided
indices. Compiled (Triton's CPU interpreter), tfn.interpret and eager torch agree under drawn Configs."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as hs

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import ShapeError
from tilefn.testing import assert_matches, compile_for_gpu

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
FORMS = ["pointer", "block_ptr", "tensor_descriptor"]


def concat_columns(x, y):
    """A tile of `[x | y]` reads `x` through a tile whose range (the output's width) is wider than `x`."""
    out = torch.empty([x.size(0), x.size(1) + y.size(1)], dtype=x.dtype, device=x.device)
    for t0, t1 in tl.tile(out.size()):
        in_x = (t1.index < x.size(1))[None, :]
        x_part = tl.load(x, [t0, t1], extra_mask=in_x)
        y_part = tl.load(y, [t0, t1.index - x.size(1)], extra_mask=(t1.index >= x.size(1))[None, :])
        out[t0, t1] = torch.where(in_x, x_part, y_part)
    return out


def row_lengths(offsets):
    """`offsets[t]` with n + 1 offsets and a tile over n: the tile covers part of its axis."""
    n = offsets.size(0) - 1
    out = torch.empty([n], dtype=offsets.dtype, device=offsets.device)
    for t in tl.tile(n):
        out[t] = offsets[t.index + 1] - offsets[t]
    return out


def widened(x, n: int):
    """Loads past the end of `x` read 0: out[:len(x)] = x + 1, the rest 1."""
    out = torch.empty([n], dtype=x.dtype, device=x.device)
    for t in tl.tile(n):
        out[t] = x[t] + 1
    return out


def narrowed(x, n: int):
    """Stores past the end of `out` (n < len(x)) are dropped."""
    out = torch.zeros([n], dtype=x.dtype, device=x.device)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] * 2
    return out


def window(x, begin: int, end: int):
    """An explicit range [begin, end) running past the end of the rows."""
    out = torch.zeros([end - begin, x.size(1)], dtype=x.dtype, device=x.device)
    for tm in tl.tile(begin, end):
        out[tm.index - begin, :] = x[tm, :]
    return out


def counted(out, x):
    """An atomic through a tile running past `out`: the lanes past its end add nothing."""
    for t in tl.tile(x.size(0)):
        tl.atomic_add(out, [t], x[t])
    return out


def strided(x):
    m, n = x.shape
    out = torch.empty([m, (n + 1) // 2], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        out[tm, :] = x[tm, ::2] + x[tm, -1][:, None]
    return out


def every_third(x):
    n = x.size(0) // 3
    out = torch.empty([n], dtype=x.dtype, device=x.device)
    for t in tl.tile(n):
        out[t] = x[t.index * 3 + 1]
    return out


def odd_numbers(x):
    out = torch.empty([x.size(0), 5], dtype=torch.int32, device=x.device)
    for t in tl.tile(x.size(0)):
        out[t, :] = torch.arange(1, 11, 2)[None, :] + t.index[:, None]
    return out


def _configs(data, kernel, *args):
    return [data.draw(tt.configs(kernel, *args))]


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), m=hs.integers(1, 9), n1=hs.integers(1, 40), n2=hs.integers(1, 40))
def test_a_tile_wider_than_a_source_reads_it_masked(data, m, n1, n2):
    x, y = torch.randn(m, n1), torch.randn(m, n2)
    assert_matches(concat_columns, lambda x, y: torch.cat([x, y], 1), x, y, configs=_configs(data, concat_columns, x, y))


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), lengths=hs.lists(hs.integers(0, 9), min_size=1, max_size=40))
def test_a_tile_shorter_than_its_axis_and_an_offset_index(data, lengths):
    offsets = torch.tensor([0] + lengths).cumsum(0)
    assert_matches(row_lengths, lambda o: o[1:] - o[:-1], offsets, configs=_configs(data, row_lengths, offsets))


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), size=hs.integers(1, 50), extra=hs.integers(1, 40))
def test_loads_past_the_end_read_zero_and_stores_past_it_are_dropped(data, size, extra):
    x = torch.randn(size)
    n = size + extra
    assert_matches(widened, lambda x, n: torch.cat([x + 1, torch.ones(n - x.numel())]), x, n,
                   configs=_configs(data, widened, x, n))
    long = torch.randn(n)
    assert_matches(narrowed, lambda x, n: x[:n] * 2, long, size, configs=_configs(data, narrowed, long, size))


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), rows=hs.integers(1, 20), begin=hs.integers(0, 6), past=hs.integers(1, 20))
def test_an_explicit_range_past_the_end(data, rows, begin, past):
    x = torch.randn(rows, 6)
    begin = min(begin, rows)
    end = rows + past

    def want(x, begin, end):
        return torch.cat([x[begin:], torch.zeros(end - rows, 6)])

    assert_matches(window, want, x, begin, end, configs=_configs(data, window, x, begin, end))


def test_atomics_through_a_tile_past_the_end():
    out, x = torch.ones(11), torch.randn(30)
    assert_matches(counted, lambda o, x: o.add_(x[:11]), out, x, configs=3)


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), m=hs.integers(1, 12), n=hs.integers(1, 20))
def test_strided_slices_negative_ints_and_scaled_tile_indices(data, m, n):
    x = torch.randn(m, n)
    assert_matches(strided, lambda x: x[:, ::2] + x[:, -1:], x, configs=_configs(data, strided, x))
    v = torch.randn(3 * n + 1)
    assert_matches(every_third, lambda x: x[1::3][:n], v, configs=_configs(data, every_third, v))


def test_arange_with_a_step():
    x = torch.randn(7)

    def want(x):
        return torch.arange(1, 11, 2, dtype=torch.int32)[None, :] + torch.arange(7, dtype=torch.int32)[:, None]

    assert_matches(odd_numbers, want, x, configs=3)


@pytest.mark.parametrize("form", FORMS)
def test_masked_past_the_end_accesses_compile_for_hopper(form):
    x, y = torch.randn(8, 48), torch.randn(8, 100)
    compile_for_gpu(concat_columns, x, y, config=tfn.Config(indexing=form))
    compile_for_gpu(narrowed, torch.randn(100), 40, config=tfn.Config(indexing=form))
    compile_for_gpu(strided, x, config=tfn.Config(indexing=form))


def test_slices_that_torch_refuses_or_that_need_device_bounds():
    def backwards(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            out[t, :] = x[t, ::-1]
        return out

    def device_bound(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            out[t, :] = x[t, : t.begin]
        return out

    with pytest.raises(ShapeError, match="slice step must be positive"):
        tfn.interpret(backwards)(torch.randn(4, 4))
    with pytest.raises(ShapeError, match="slices inside a tile loop need static bounds"):
        tfn.interpret(device_bound)(torch.randn(4, 4))
