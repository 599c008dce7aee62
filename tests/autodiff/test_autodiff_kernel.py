"""Tile loops transposed: inner accumulator loops run again with the result's cotangent, atomic adds in
the forward read their cotangent as stores do, and carries that are not accumulators are refused."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import UnsupportedOp

F64 = torch.float64


@tfn.jit
def column_sums(x):
    """A forward that reduces into its output with atomic adds (a 2-d grid over rows and columns)."""
    m, n = x.shape
    out = torch.zeros([n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        tl.atomic_add(out, [tn], torch.sum(torch.sin(x[tm, tn]), dim=0))
    return out


def test_a_forward_atomic_add_reads_its_cotangent_like_a_store():
    x, g = torch.randn(9, 13, dtype=F64), torch.randn(13, dtype=F64)
    (got,) = tfn.vjp(column_sums)(x, g)
    torch.testing.assert_close(got, torch.cos(x) * g[None, :])


@tfn.jit
def online_softmax(x):
    m, n = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        mi = tl.full([tm], float("-inf"), dtype=x.dtype)
        li = tl.zeros([tm], dtype=x.dtype)
        for tn in tl.tile(n):
            values = x[tm, tn]
            m_next = torch.maximum(mi, torch.amax(values, dim=1))
            li = li * torch.exp(mi - m_next) + torch.sum(torch.exp(values - m_next[:, None]), dim=1)
            mi = m_next
        for tn in tl.tile(n):
            out[tm, tn] = torch.exp(x[tm, tn] - mi[:, None]) / li[:, None]
    return out


def test_a_carry_that_is_not_an_accumulator_is_refused_at_its_line():
    x = torch.randn(4, 8, dtype=F64)
    with pytest.raises(UnsupportedOp, match="this loop's carry is not an accumulator") as info:
        tfn.vjp(online_softmax)(x, x)
    assert "m_next = torch.maximum(mi, torch.amax(values, dim=1))" in str(info.value)


@tfn.jit
def two_stores(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape):
        out[t] = x[t]
        out[t] = x[t] * 2
    return out


def test_an_output_written_twice_is_refused():
    x = torch.randn(3, 4)
    with pytest.raises(UnsupportedOp, match="writes `out` in 2 places"):
        tfn.vjp(two_stores)(x, x)


@tfn.jit
def two_loops(x, y):
    """Two top-level loops, each its own backward loop (one launch); x is read by both."""
    out_a = torch.empty_like(x)
    out_b = torch.empty_like(x)
    for t in tl.tile(x.shape):
        out_a[t] = torch.exp(x[t])
    for t in tl.tile(x.shape):
        out_b[t] = x[t] * y[t]
    return out_a, out_b


def test_several_outputs_and_loops():
    x, y = torch.randn(5, 6, dtype=F64), torch.randn(5, 6, dtype=F64)
    ga, gb = torch.randn_like(x), torch.randn_like(x)
    bwd = tfn.vjp(two_loops, outputs=2)
    got = bwd(x, y, ga, gb)
    torch.testing.assert_close(got[0], torch.exp(x) * ga + y * gb)
    torch.testing.assert_close(got[1], x * gb)
    named = bwd(x, y, grad_output_0=ga, grad_output_1=gb)
    torch.testing.assert_close(named[0], got[0])


@tfn.jit
def total(x):
    """Every lane of a tile added into one element: the atomic's index broadcasts to its value."""
    out = torch.zeros([1], dtype=x.dtype, device=x.device)
    for t in tl.tile(x.shape[0]):
        tl.atomic_add(out, [0], x[t] * x[t])
    return out


def test_an_atomic_into_one_element_gives_every_lane_its_cotangent():
    x = torch.randn(37, dtype=F64)
    (got,) = tfn.vjp(total)(x, torch.tensor([0.5], dtype=F64))
    torch.testing.assert_close(got, x)
