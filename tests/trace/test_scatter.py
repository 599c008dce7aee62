"""Torch's accumulating scatters inside tile loops: compiled, tfn.interpret and eager torch on whole tensors agree."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as hs

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ShapeError, TracingError
from tilefn.testing import assert_matches

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def index_add(out, idx, src):
    for t in tl.tile(idx.shape[0]):
        out.index_add_(0, idx[t], src[t, :], alpha=3)
    return out


def index_add_columns(out, idx, src):
    for t in tl.tile(idx.shape[0]):
        out.index_add_(1, idx[t], src[:, t])
    return out


def row_histogram(idx, bins: int):
    m, _ = idx.shape
    counts = torch.zeros([m, bins], dtype=torch.int32, device=idx.device)
    for tm in tl.tile(m):
        i = idx[tm, :]
        counts.scatter_add_(1, i, torch.ones_like(i, dtype=torch.int32))
    return counts


def column_scatter_max(out, idx, src):
    for tm, tn in tl.tile(idx.shape):
        out.scatter_reduce_(0, idx[tm, tn], src[tm, tn], "amax")
    return out


def scatter_sum(out, idx, src):
    for t in tl.tile(idx.shape[0]):
        out.scatter_reduce_(0, idx[t], src[t], "sum")
    return out


def _ints(seed, high, shape):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=8, deadline=None)
@given(n=hs.integers(1, 70), rows=hs.integers(1, 6), d=hs.integers(1, 9), seed=hs.integers(0, 999))
def test_index_add_matches_torch(n, rows, d, seed):
    idx, src = _ints(seed, rows, (n,)), _ints(seed + 1, 40, (n, d)).float()
    assert_matches(index_add, lambda o, i, s: o.index_add_(0, i, s, alpha=3), torch.ones(rows, d), idx, src,
                   configs=1)
    srcT = src.t().contiguous()
    assert_matches(index_add_columns, lambda o, i, s: o.index_add_(1, i, s), torch.ones(d, rows), idx, srcT,
                   configs=1)


@settings(max_examples=8, deadline=None)
@given(m=hs.integers(1, 20), n=hs.integers(1, 40), bins=hs.integers(1, 8), seed=hs.integers(0, 999))
def test_scatter_add_row_histogram_matches_torch(m, n, bins, seed):
    idx = _ints(seed, bins, (m, n))
    def want(i, b):
        return torch.zeros(m, b, dtype=torch.int32).scatter_add_(1, i, torch.ones_like(i, dtype=torch.int32))

    assert_matches(row_histogram, want, idx, bins, configs=2)


@settings(max_examples=8, deadline=None)
@given(m=hs.integers(1, 30), n=hs.integers(1, 20), rows=hs.integers(1, 5), seed=hs.integers(0, 999))
def test_scatter_reduce_amax_over_tiles_of_both_dims_matches_torch(m, n, rows, seed):
    idx, src = _ints(seed, rows, (m, n)), torch.randn(m, n, generator=torch.Generator().manual_seed(seed))
    out = torch.full((rows, n), -0.5)
    assert_matches(column_scatter_max, lambda o, i, s: o.scatter_reduce_(0, i, s, "amax"), out, idx, src,
                   configs=2)


def test_scatter_reduce_sum_matches_torch():
    idx, src = _ints(0, 5, (100,)), _ints(1, 9, (100,)).to(torch.int64)
    assert_matches(scatter_sum, lambda o, i, s: o.scatter_reduce_(0, i, s, "sum"), torch.zeros(5, dtype=torch.int64),
                   idx, src, configs=2)


def _traced(kernel, *args):
    return lambda: tfn.make_ir(kernel)(*args)


def test_scatter_errors_name_the_line_and_the_fix():
    def prod(out, idx, src):
        for t in tl.tile(idx.shape[0]):
            out.scatter_reduce_(0, idx[t], src[t], "prod")
        return out

    def exclusive(out, idx, src):
        for t in tl.tile(idx.shape[0]):
            out.scatter_reduce_(0, idx[t], src[t], "amax", include_self=False)
        return out

    def windowed(out, idx, src):
        for t, td in tl.tile(src.shape):
            out.index_add_(0, idx[t], src[t, td])
        return out

    def too_wide(out, idx, src):
        for tm in tl.tile(idx.shape[0]):
            out.scatter_add_(1, idx[tm, :], src[tm, :])
        return out

    args = torch.zeros(4), torch.zeros(9, dtype=torch.int64), torch.zeros(9)
    with pytest.raises(TracingError, match=r"reduce='prod'.*'sum', 'amax', 'amin'"):
        _traced(prod, *args)()
    with pytest.raises(TracingError, match="include_self=False"):
        _traced(exclusive, *args)()
    with pytest.raises(ShapeError, match=r"tl.atomic_add\(out, \[idx, tile") as e:
        _traced(windowed, torch.zeros(4, 8), torch.zeros(9, dtype=torch.int64), torch.zeros(9, 8))()
    assert "test_scatter.py" in str(e.value)
    with pytest.raises(ShapeError, match="covers 12 positions of dim 0, but the target has 3"):
        _traced(too_wide, torch.zeros(3, 5), torch.zeros(12, 4, dtype=torch.int64), torch.zeros(12, 4))()


def test_a_one_row_index_add_adds_every_column():
    # (Triton's CPU interpreter dropped the columns of a [1, 1] mask broadcast over a [1, 2] atomic)
    idx, src = torch.tensor([0]), torch.tensor([[5.0, 19.0]])
    assert_matches(index_add, lambda o, i, s: o.index_add_(0, i, s, alpha=3), torch.ones(1, 2), idx, src,
                   configs=tfn.Config(block_sizes=[1], num_warps=1, num_stages=1))
