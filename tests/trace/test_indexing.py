"""Indexing host tensors in tile loops: tiles that do not exactly cover their axis, offset and strided
indices. Compiled (Triton's CPU interpreter), tfn.interpret and eager torch agree under drawn Configs."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as hs

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import HostTensorInExpression, ShapeError
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


@settings(max_examples=4, deadline=None)
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
@given(data=hs.data(), size=hs.integers(2, 50), extra=hs.integers(1, 40))  # (size 1 broadcasts: below)
def test_loads_past_the_end_read_zero_and_stores_past_it_are_dropped(data, size, extra):
    x = torch.randn(size)
    n = size + extra
    assert_matches(widened, lambda x, n: torch.cat([x + 1, torch.ones(n - x.numel())]), x, n,
                   configs=_configs(data, widened, x, n))
    long = torch.randn(n)
    assert_matches(narrowed, lambda x, n: x[:n] * 2, long, size, configs=_configs(data, narrowed, long, size))


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), rows=hs.integers(2, 20), begin=hs.integers(0, 6), past=hs.integers(1, 20))
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
    def dynamic_length(x, n):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0), block_size=1):
            h = n[0]
            out[t, :2] = x[t, h : h * 2]
        return out

    with pytest.raises(ShapeError, match="must start at an integer device scalar") as info:
        tfn.interpret(device_bound)(torch.randn(4, 4))
    assert "x[t, : t.begin]" in str(info.value)
    with pytest.raises(ShapeError, match="length of a slice with device bounds must be static") as info:
        tfn.interpret(dynamic_length)(torch.randn(4, 4), torch.tensor([1]))
    assert "x[t, h : h * 2]" in str(info.value)


def outer_rows_cols(a, rows: int, cols: int):
    """Two 1-d index tensors (aranges) in one load: an outer product, as Helion's `A[tile, rows, cols]`."""
    out = torch.empty([a.size(0), rows, cols], dtype=a.dtype, device=a.device)
    for t in tl.tile(a.size(0)):
        out[t, :, :] = a[t, tl.arange(0, rows), tl.arange(0, cols)] * 2
    return out


def broadcast_gather(a, idx):
    """Index tensors of 2 dims broadcast together (torch's rule): a[i[:, None], j[None, :]]."""
    out = torch.empty([idx.size(0), a.size(1)], dtype=a.dtype, device=a.device)
    for t in tl.tile(idx.size(0)):
        out[t, :] = a[idx[t][:, None], torch.arange(a.size(1))[None, :]]
    return out


def gather_rows(a, idx):
    out = torch.empty([idx.size(0), a.size(1)], dtype=a.dtype, device=a.device)
    for t in tl.tile(idx.size(0)):
        out[t, :] = a[idx[t], :]
    return out


def grouped_fill(out, offsets):
    """A masked store through two index tensors: rows of group g (past its end masked off) get g + 1."""
    for g in tl.grid(offsets.size(0) - 1):
        rows = offsets[g] + tl.arange(0, 8)
        cols = tl.arange(0, 8)
        keep = (rows < offsets[g + 1])[:, None] & (cols < out.size(1))[None, :]
        tl.store(out, [rows, cols], torch.ones([8, 8], dtype=out.dtype) * (g + 1).to(out.dtype), extra_mask=keep)
    return out


def _grouped(out, offsets):
    for g in range(offsets.numel() - 1):
        out[offsets[g]:offsets[g + 1]] = g + 1
    return out


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), b=hs.integers(1, 9), rows=hs.integers(1, 6), cols=hs.integers(1, 7),
       n=hs.integers(1, 30), seed=hs.integers(0, 999))
def test_several_index_tensors_in_one_access(data, b, rows, cols, n, seed):
    torch.manual_seed(seed)
    a = torch.randn(b, 6, 7)
    assert_matches(outer_rows_cols, lambda a, r, c: a[:, :r, :c] * 2, a, rows, cols,
                   configs=_configs(data, outer_rows_cols, a, rows, cols))
    table, idx = torch.randn(10, 5), torch.randint(0, 10, (n,))
    for kernel in (broadcast_gather, gather_rows):
        assert_matches(kernel, lambda a, i: a[i], table, idx, configs=_configs(data, kernel, table, idx))


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), lengths=hs.lists(hs.integers(0, 8), min_size=1, max_size=5), d=hs.integers(1, 8))
def test_a_masked_store_through_index_tensors(data, lengths, d):
    offsets = torch.tensor([0] + lengths).cumsum(0)
    out = torch.zeros(int(offsets[-1]) + 1, d)
    assert_matches(grouped_fill, _grouped, out, offsets, configs=_configs(data, grouped_fill, out, offsets))


def test_several_index_tensors_compile_for_hopper():
    a, table, idx = torch.randn(4, 6, 7), torch.randn(10, 5), torch.randint(0, 10, (9,))
    compile_for_gpu(outer_rows_cols, a, 4, 3)
    compile_for_gpu(broadcast_gather, table, idx)
    compile_for_gpu(grouped_fill, torch.zeros(7, 4), torch.tensor([0, 2, 5, 6]))


def test_index_tensors_that_cannot_broadcast_together():
    def apart(a, idx):
        out = torch.empty([idx.size(0), 1, 4], dtype=a.dtype)
        for t in tl.tile(idx.size(0)):
            out[t, :, :] = a[idx[t][:, None], :, torch.arange(4)[None, :]]
        return out

    def mismatched(a, idx):
        out = torch.empty([idx.size(0), 3], dtype=a.dtype)
        for t in tl.tile(idx.size(0)):
            out[t, :] = a[idx[t][:, None], torch.arange(3)[None, :, None]]
        return out

    with pytest.raises(ShapeError, match="must stand next to each other"):
        tfn.interpret(apart)(torch.randn(5, 3, 4), torch.randint(0, 5, (6,)))
    with pytest.raises(ShapeError, match="do not broadcast together"):
        tfn.interpret(mismatched)(torch.randn(5, 3), torch.randint(0, 5, (6,)))


def test_a_tile_over_an_axis_of_size_one_broadcasts_its_element_as_torch_does():
    def add_bias(x, b):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = x[t] + b[t]  # b has one element: x[0:n] of it is that element, broadcast
        return out

    x, b = torch.randn(40), torch.randn(1)
    for config in (tfn.Config(block_sizes=[8]), tfn.Config(block_sizes=[64])):
        torch.testing.assert_close(tfn.jit(add_bias, config=config)(x, b), x + b)
        torch.testing.assert_close(tfn.interpret(add_bias, config=config)(x, b), x + b)


def prefix_sums(x, b):
    """Row prefix sums of x * b (b: one element per row, or one for all) as products with a lower-triangular
    matrix: each row tile walks the tiles `tl.tile(0, tm.end)` up to its own end."""
    n, d = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(n):
        acc = tl.zeros([tm, d], dtype=torch.float32)
        for tn in tl.tile(0, tm.end):
            lower = (tm.index[:, None] >= tn.index[None, :]).to(x.dtype)
            acc = torch.addmm(acc, lower, x[tn, :] * b[tn][:, None])
        out[tm, :] = acc.to(out.dtype)
    return out


@pytest.mark.parametrize("n", [1, 2, 17])
@given(data=hs.data())
@settings(max_examples=3, deadline=None)
def test_a_tile_up_to_another_tiles_end_indexes_an_axis_of_its_size_even_one(n, data):
    """A tile whose range ends at another tile's `end` runs at most to that tile's loop end: over an axis of that
    size, 1 included, it indexes (no broadcast: the product's inner dims agree); over a size-1 axis it may run
    past, it broadcasts the element."""
    x = torch.randn(n, 16)
    for b in (torch.randn(n), torch.randn(1)):
        config = data.draw(tt.configs(prefix_sums, x, b), label="config")
        assert_matches(prefix_sums, lambda x, b: torch.cumsum(x * b[:, None], 0), x, b, configs=[config])


def broadcast_rows(src, dst, val):
    """Helion's test_tensor_value: a whole host tensor stored into a row (all of it is loaded), read back."""
    for i in tl.grid(src.shape[0]):
        dst[i] = val
        src[i] = dst[i] * 2
    return src, dst


def test_storing_a_whole_host_tensor_loads_all_of_it():
    def eager(src, dst, val):
        dst[:] = val
        src[:] = dst * 2
        return src, dst

    for val_shape in ([4], [3, 4]):
        val = torch.randn(val_shape)
        src, dst = torch.zeros([6, *val_shape]), torch.zeros([6, *val_shape])
        assert_matches(broadcast_rows, eager, src, dst, val, configs=2)
    compile_for_gpu(broadcast_rows, torch.zeros(6, 3, 4), torch.zeros(6, 3, 4), torch.randn(3, 4))


def test_a_whole_host_tensor_in_arithmetic_is_a_clear_error():
    def kernel(x, scale):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape):
            out[t] = x[t] + scale  # direct-use
        return out

    with pytest.raises(HostTensorInExpression, match=r"index it with tiles.*x\[\(\)\]") as info:
        tfn.make_ir(kernel)(torch.randn(4, 4), torch.tensor(3.0))
    assert "direct-use" in info.value.source.excerpt()
