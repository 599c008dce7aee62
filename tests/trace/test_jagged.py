"""tl.jagged_tile (Helion's hl.jagged_tile): lanes past their own end are masked in loads, stores and
reductions, and atomics. Compiled (Triton's CPU interpreter), tfn.interpret and eager torch agree under drawn Configs."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as hs

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import ShapeError, TracingError
from tilefn.testing import assert_matches, compile_for_gpu

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def jagged_sum(x_data, x_offsets):
    """Helion's jagged_sum: rows x_data[offsets[i]:offsets[i + 1]] summed, gathered through flat indices."""
    m = x_data.shape[1]
    rows = x_offsets.size(0) - 1
    out = torch.zeros([rows, m], dtype=x_data.dtype, device=x_data.device)
    x_flat = x_data.view(-1)
    for tile_b in tl.tile(rows):
        starts = x_offsets[tile_b]
        nnz = x_offsets[tile_b.index + 1] - starts
        for tile_m in tl.tile(m):
            row_sums = tl.zeros([tile_b, tile_m], dtype=x_data.dtype)
            for tile_k in tl.jagged_tile(nnz):
                flat = (starts[:, None] + tile_k.index[None, :])[:, :, None] * m + tile_m.index[None, None, :]
                row_sums = row_sums + tl.load(x_flat, [flat]).sum(dim=1)
            out[tile_b, tile_m] = row_sums
    return out


def prefix_max_and_copy(x, lengths, out):
    """A max over each row's first lengths[r] values (padded lanes must not count: values are < 0),
    and a copy of just those values (stores past a row's end are dropped)."""
    b = lengths.size(0)
    best = torch.empty([b], dtype=x.dtype, device=x.device)
    for tb in tl.tile(b):
        ends = lengths[tb]
        acc = tl.full([tb], float("-inf"), dtype=x.dtype)
        for tk in tl.jagged_tile(ends):
            values = x[tb, tk]
            acc = torch.maximum(acc, values.amax(dim=1))
            out[tb, tk] = values * 2
        best[tb] = acc
    return best


def _offsets(lengths):
    return torch.tensor([0] + lengths).cumsum(0)


def _jagged_sum(x_data, offsets):
    return torch.stack([x_data[offsets[i]:offsets[i + 1]].sum(0) for i in range(offsets.numel() - 1)])


def _prefix(x, lengths, out):
    for r, n in enumerate(lengths.tolist()):
        out[r, :n] = x[r, :n] * 2
    return torch.stack([x[r, :n].amax() for r, n in enumerate(lengths.tolist())])


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), lengths=hs.lists(hs.integers(0, 9), min_size=1, max_size=12), m=hs.integers(1, 6))
def test_jagged_sum_of_packed_rows(data, lengths, m):
    offsets = _offsets(lengths)
    x = torch.randn(int(offsets[-1]), m)
    assert_matches(jagged_sum, _jagged_sum, x, offsets, configs=[data.draw(tt.configs(jagged_sum, x, offsets))])


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), lengths=hs.lists(hs.integers(1, 20), min_size=1, max_size=9))
def test_jagged_reductions_and_stores_see_only_each_rows_lanes(data, lengths):
    x = -torch.rand(len(lengths), 20) - 1
    ends, out = torch.tensor(lengths), torch.full((len(lengths), 20), 7.0)
    assert_matches(prefix_max_and_copy, _prefix, x, ends, out,
                   configs=[data.draw(tt.configs(prefix_max_and_copy, x, ends, out))])


def prefix_counts(x, lengths, counts):
    """counts[x[r, k]] += 1 for each row's first lengths[r] values: lanes past a row's end add nothing."""
    for tb in tl.tile(lengths.size(0)):
        for tk in tl.jagged_tile(lengths[tb]):
            tl.atomic_add(counts, [x[tb, tk]], 1)
    return counts


def _prefix_counts(x, lengths, counts):
    for r, n in enumerate(lengths.tolist()):
        counts += torch.bincount(x[r, :n], minlength=counts.numel()).to(counts.dtype)
    return counts


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), lengths=hs.lists(hs.integers(0, 20), min_size=1, max_size=9))
def test_jagged_atomics_update_only_each_rows_lanes(data, lengths):
    x = torch.randint(0, 5, (len(lengths), 20))
    ends, counts = torch.tensor(lengths), torch.zeros(5, dtype=torch.int32)
    assert_matches(prefix_counts, _prefix_counts, x, ends, counts,
                   configs=[data.draw(tt.configs(prefix_counts, x, ends, counts))])


def test_jagged_tiles_compile_for_hopper():
    offsets = _offsets([3, 0, 7, 2])
    compile_for_gpu(jagged_sum, torch.randn(12, 5), offsets)
    compile_for_gpu(prefix_max_and_copy, torch.randn(4, 20), torch.tensor([1, 5, 20, 3]), torch.zeros(4, 20))
    compile_for_gpu(prefix_counts, torch.randint(0, 5, (4, 20)), torch.tensor([1, 5, 20, 3]),
                    torch.zeros(5, dtype=torch.int32))


def test_jagged_tile_misuse_is_a_clear_error():
    def host_parent(x, lengths):
        out = torch.zeros_like(x)
        for tb in tl.tile(x.size(0)):
            for tk in tl.jagged_tile(x.size(1)):
                out[tb, tk] = x[tb, tk]
        return out

    def without_parent(x, lengths):
        out = torch.zeros_like(x)
        for tb in tl.tile(x.size(0)):
            for tk in tl.jagged_tile(lengths[tb]):
                out[0, tk] = x[0, tk]
        return out

    def mean_over(x, lengths):
        out = torch.zeros([x.size(0)], dtype=x.dtype)
        for tb in tl.tile(x.size(0)):
            for tk in tl.jagged_tile(lengths[tb]):
                out[tb] = x[tb, tk].mean(dim=1)
        return out

    def atomic_over(x, lengths):
        out = torch.zeros([1, x.size(0), x.size(1)], dtype=x.dtype)
        for tb in tl.tile(x.size(0)):
            for tk in tl.jagged_tile(lengths[tb]):
                tl.atomic_add(out, [0, tb, tk], x[None, tb, tk] + torch.zeros([3, 1, 1], dtype=x.dtype))
        return out

    x, lengths = torch.randn(4, 6), torch.tensor([1, 2, 3, 4])
    with pytest.raises(TracingError, match="a value broadcast past its index over a jagged tile's dim"):
        tfn.make_ir(atomic_over)(x, lengths)
    with pytest.raises(ShapeError, match="every dim is an enclosing tile"):
        tfn.make_ir(host_parent)(x, lengths)
    with pytest.raises(ShapeError, match="without its parent's tiles"):
        tfn.make_ir(without_parent)(x, lengths)
    with pytest.raises(TracingError, match="mean / var over a jagged tile's dim"):
        tfn.make_ir(mean_over)(x, lengths)
