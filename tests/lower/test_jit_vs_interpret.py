"""Three oracles agree: the compiled kernel (Triton's CPU interpreter), `tfn.interpret` and eager PyTorch.

Hypothesis draws, per kernel of a small corpus, the shapes (ragged edges included), the dtype and a
power-of-two block size per block symbol of the traced Program. Every drawn Config is run twice:
`kernel.lower(*args, config=cfg).compile()(*args)` and `tfn.interpret(fn, config=cfg)(*args)`;
both must match the eager reference written here, with dtype-appropriate tolerances.

Triton's interpreter costs ~1-3 ms per program instance, so shapes stay small and block sizes are
drawn so that each grid dimension has at most a handful of tiles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tilefn as tfn
from tilefn import lang as tl
from tilefn.testing import compile_for_gpu

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")

HALF = (torch.float16, torch.bfloat16)
FLOATS = (torch.float32, torch.float16, torch.bfloat16)
# (atol, rtol) by output dtype. Half-precision kernels compute in float32 and round once per op.
TOL = {torch.float32: (2e-4, 2e-4), torch.float16: (1e-2, 1e-2), torch.bfloat16: (4e-2, 4e-2),
       torch.float64: (1e-9, 1e-9)}
EXACT = (torch.int32, torch.int64, torch.bool, torch.int16, torch.int8, torch.uint8)
MAX_TILES = 6  # per grid dimension: bounds the number of (slow) interpreted program instances


# --- kernels -------------------------------------------------------------------------------
# pointwise (2-d grid of tiles)
def k_arith(x, y):
    out = torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        a, b = x[tm, tn], y[tm, tn]
        out[tm, tn] = a * b + a / (b.abs() + 1) - 2 * b + 1.5
    return out


def r_arith(x, y):
    a, b = x.float(), y.float()
    return (a * b + a / (b.abs() + 1) - 2 * b + 1.5).to(x.dtype)


def k_compare_where(x, y):
    out = torch.empty_like(x)
    flags = torch.empty(x.shape, dtype=torch.bool, device=x.device)
    for tm, tn in tl.tile(x.shape):
        a, b = x[tm, tn], y[tm, tn]
        out[tm, tn] = torch.where(a > b, a, b * 2)
        flags[tm, tn] = (a >= 0) & (b < 0.5) | (a == b)
    return out, flags


def r_compare_where(x, y):
    return torch.where(x > y, x, y * 2), (x >= 0) & (y < 0.5) | (x == y)


def k_clamp_minmax(x, y):
    out = torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        a, b = x[tm, tn], y[tm, tn]
        out[tm, tn] = torch.clamp(a, -0.5, 0.75) + torch.maximum(a, b) - torch.minimum(a, b) + b.clamp(min=0)
    return out


def r_clamp_minmax(x, y):
    return torch.clamp(x, -0.5, 0.75) + torch.maximum(x, y) - torch.minimum(x, y) + y.clamp(min=0)


def k_pow(x, y):
    out = torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        a, b = x[tm, tn].abs() + 0.5, y[tm, tn]
        out[tm, tn] = a ** 2 + a ** 0.5 + torch.pow(a, b) + a ** 1.7 + a ** -1
    return out


def r_pow(x, y):
    a, b = x.float().abs() + 0.5, y.float()
    return (a ** 2 + a ** 0.5 + torch.pow(a, b) + a ** 1.7 + a ** -1).to(x.dtype)


def k_unary_math(x, y):
    out = torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        a = x[tm, tn]
        out[tm, tn] = (torch.exp(a) + torch.log(a.abs() + 1) + torch.sqrt(a.abs()) + torch.sigmoid(a)
                       + torch.tanh(a) + torch.erf(a) - torch.sign(a) + torch.rsqrt(a.abs() + 1))
    return out


def r_unary_math(x, y):
    a = x.float()
    return (torch.exp(a) + torch.log(a.abs() + 1) + torch.sqrt(a.abs()) + torch.sigmoid(a)
            + torch.tanh(a) + torch.erf(a) - torch.sign(a) + torch.rsqrt(a.abs() + 1)).to(x.dtype)


def k_casts(x):
    as_int = torch.empty(x.shape, dtype=torch.int32, device=x.device)
    as_half = torch.empty(x.shape, dtype=torch.bfloat16, device=x.device)
    back = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    for tm, tn in tl.tile(x.shape):
        a = x[tm, tn] * 10
        as_int[tm, tn] = a.to(torch.int32)
        as_half[tm, tn] = a.to(torch.bfloat16)
        back[tm, tn] = a.to(torch.float16).to(torch.float32) + (a > 0).to(torch.float32)
    return as_int, as_half, back


def r_casts(x):
    a = x * 10
    return a.to(torch.int32), a.to(torch.bfloat16), a.to(torch.float16).to(torch.float32) + (a > 0).float()


def k_int_ops(x, y):
    quot = torch.empty_like(x)
    rem = torch.empty_like(x)
    bits = torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        a, b = x[tm, tn], y[tm, tn]
        quot[tm, tn] = torch.floor_divide(a, b)
        rem[tm, tn] = a % b
        bits[tm, tn] = (a & b) ^ (a | 3) + (b << 2) - torch.maximum(a, b)
    return quot, rem, bits


def r_int_ops(x, y):
    return torch.floor_divide(x, y), x % y, (x & y) ^ (x | 3) + (y << 2) - torch.maximum(x, y)


def k_float_divmod(x, y):
    quot = torch.empty_like(x)
    rem = torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        a, b = x[tm, tn], y[tm, tn]
        quot[tm, tn] = torch.floor_divide(a, b)
        rem[tm, tn] = torch.remainder(a, b)
    return quot, rem


def r_float_divmod(x, y):
    return torch.floor_divide(x, y), torch.remainder(x, y)


def k_gelu_silu(x, y):
    out = torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        a = x[tm, tn]
        out[tm, tn] = (torch.nn.functional.gelu(a) + torch.nn.functional.gelu(a, approximate="tanh")
                       + torch.nn.functional.silu(a) + torch.relu(a))
    return out


def r_gelu_silu(x, y):
    a = x.float()
    F = torch.nn.functional
    return (F.gelu(a) + F.gelu(a, approximate="tanh") + F.silu(a) + torch.relu(a)).to(x.dtype)


# reductions over whole rows (`x[tm, :]`) or whole columns (`x[:, tn]`)
def k_row_reduce(x):
    m, n = x.shape
    s = torch.empty([m, 1], dtype=x.dtype, device=x.device)
    mean = torch.empty([m], dtype=x.dtype, device=x.device)
    mx = torch.empty([m], dtype=x.dtype, device=x.device)
    mn = torch.empty([m, 1], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        row = x[tm, :]
        s[tm, :] = torch.sum(row, dim=1, keepdim=True)
        mean[tm] = row.mean(dim=-1)
        mx[tm] = torch.amax(row, dim=1)
        mn[tm, :] = torch.amin(row, dim=1, keepdim=True)
    return s, mean, mx, mn


def r_row_reduce(x):
    a = x.float()
    return tuple(v.to(x.dtype) for v in (a.sum(1, keepdim=True), a.mean(-1), a.amax(1), a.amin(1, keepdim=True)))


def k_col_reduce(x):
    m, n = x.shape
    s = torch.empty([n], dtype=torch.float32, device=x.device)
    mx = torch.empty([1, n], dtype=x.dtype, device=x.device)
    for tn in tl.tile(n):
        col = x[:, tn]
        s[tn] = torch.sum(col.to(torch.float32), dim=0)
        mx[:, tn] = torch.amax(col, dim=0, keepdim=True)
    return s, mx


def r_col_reduce(x):
    return x.float().sum(0), x.amax(0, keepdim=True)


def k_arg_reduce(x):
    m, n = x.shape
    amax = torch.empty([m], dtype=torch.int64, device=x.device)
    amin = torch.empty([m, 1], dtype=torch.int64, device=x.device)
    for tm in tl.tile(m):
        row = x[tm, :]
        amax[tm] = torch.argmax(row, dim=1)
        amin[tm, :] = row.argmin(dim=1, keepdim=True)
    return amax, amin


def r_arg_reduce(x):
    return x.argmax(1), x.argmin(1, keepdim=True)


def k_prod(x):
    m, n = x.shape
    out = torch.empty([m, 1], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        out[tm, :] = torch.prod(x[tm, :], dim=1, keepdim=True)
    return out


def r_prod(x):
    return x.float().prod(1, keepdim=True).to(x.dtype)


def k_int_sum(x):
    m, n = x.shape
    out = torch.empty([m], dtype=torch.int64, device=x.device)
    mx = torch.empty([m], dtype=torch.int32, device=x.device)
    mn = torch.empty([m], dtype=torch.int32, device=x.device)
    for tm in tl.tile(m):
        row = x[tm, :]
        out[tm] = torch.sum(row, dim=1)  # int64, as torch: no int32 overflow
        mx[tm] = torch.amax(row, dim=1)
        mn[tm] = torch.amin(row - 5, dim=1)
    return out, mx, mn


def r_int_sum(x):
    return x.sum(1), x.amax(1), (x - 5).amin(1)


# fused row ops
def k_softmax(x):
    out = torch.empty_like(x)
    logs = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = torch.softmax(x[tm, :], dim=1)
        logs[tm, :] = torch.log_softmax(x[tm, :].to(torch.float32), dim=-1).to(x.dtype)
    return out, logs


def r_softmax(x):
    a = x.float()
    return torch.softmax(a, dim=1).to(x.dtype), torch.log_softmax(a, dim=-1).to(x.dtype)


def k_layer_norm(x, w, b):
    m, n = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        out[tm, :] = torch.nn.functional.layer_norm(x[tm, :].to(torch.float32), [n], w[:].to(torch.float32),
                                                    b[:].to(torch.float32), eps=1e-5).to(x.dtype)
    return out


def r_layer_norm(x, w, b):
    return torch.nn.functional.layer_norm(x.float(), [x.shape[1]], w.float(), b.float(), eps=1e-5).to(x.dtype)


def k_rms_norm(x, w):
    m, n = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        row = x[tm, :].to(torch.float32)
        out[tm, :] = torch.rms_norm(row, [n], w[:].to(torch.float32), eps=1e-6).to(x.dtype)
    return out


def r_rms_norm(x, w):
    return torch.rms_norm(x.float(), [x.shape[1]], w.float(), eps=1e-6).to(x.dtype)


# views
def k_views(x):
    m, n = x.shape
    tr = torch.empty([n, m], dtype=x.dtype, device=x.device)
    outer = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        block = x[tm, tn]
        tr[tn, tm] = block.t()
        col = x[tm, 0]  # a column, as a 1-d value
        outer[tm, tn] = col.unsqueeze(1).expand(-1, block.shape[1]) * x[0, tn][None, :]
    return tr, outer


def r_views(x):
    return x.t().contiguous(), x[:, 0:1] * x[0:1, :]


def k_reshape(x):
    m, n = x.shape  # n is a power of two
    out = torch.empty([m, 2], dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        halves = x[tm, :].to(torch.float32).reshape(tm, 2, n // 2)
        out[tm, :] = halves.sum(dim=2)
    return out


def r_reshape(x):
    return x.float().reshape(x.shape[0], 2, -1).sum(2)


# matrix products
def k_matmul(x, y):
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = acc + torch.matmul(x[tm, tk], y[tk, tn])
        out[tm, tn] = acc.to(out.dtype)
    return out


def r_matmul(x, y):
    return (x.float() @ y.float()).to(x.dtype)


def k_addmm_epilogue(x, y, bias):
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = torch.addmm(acc, x[tm, tk], y[tk, tn])
        out[tm, tn] = torch.relu(acc + bias[tn].to(torch.float32)[None, :]).to(out.dtype)
    return out


def r_addmm_epilogue(x, y, bias):
    return torch.relu(x.float() @ y.float() + bias.float()).to(x.dtype)


def k_bmm(x, y):
    b, m, k = x.shape
    n = y.shape[2]
    out = torch.empty([b, m, n], dtype=x.dtype, device=x.device)
    for tb, tm, tn in tl.tile([b, m, n]):
        acc = tl.zeros([tb, tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = torch.baddbmm(acc, x[tb, tm, tk], y[tb, tk, tn])
        out[tb, tm, tn] = acc.to(out.dtype)
    return out


def r_bmm(x, y):
    return torch.bmm(x.float(), y.float()).to(x.dtype)


def k_tl_dot(x, y):
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=torch.float32, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = tl.dot(x[tm, tk], y[tk, tn], acc=acc)
        out[tm, tn] = acc
    return out


def r_tl_dot(x, y):
    return x.float() @ y.float()


# gathers
def k_embedding(idx, weight):
    num, dim = idx.shape[0], weight.shape[1]
    out = torch.empty([num, dim], dtype=weight.dtype, device=weight.device)
    for tb, td in tl.tile([num, dim]):
        out[tb, td] = weight[idx[tb], td]
    return out


def r_embedding(idx, weight):
    return weight[idx]


def k_pick(x, labels):
    n, v = x.shape
    out = torch.empty([n], dtype=x.dtype, device=x.device)
    flat = x.view(-1)
    for tn in tl.tile(n):
        out[tn] = flat[tn.index * v + labels[tn]] * 2
    return out


def r_pick(x, labels):
    return x.gather(1, labels[:, None])[:, 0] * 2


# loops: jagged rows and a two-carry online softmax
def k_jagged(values, offsets):
    num_rows = offsets.shape[0] - 1
    d = values.shape[1]
    out = torch.empty([num_rows, d], dtype=torch.float32, device=values.device)
    for r in tl.grid(num_rows):
        for td in tl.tile(d):
            acc = tl.zeros([td], dtype=torch.float32)
            for tv in tl.tile(offsets[r], offsets[r + 1]):
                acc = acc + torch.sum(values[tv, td].to(torch.float32), dim=0)
            out[r, td] = acc
    return out


def r_jagged(values, offsets):
    b = offsets.tolist()
    return torch.stack([values[s:e].float().sum(0) for s, e in zip(b[:-1], b[1:])])


def k_two_carry(x):
    m, n = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        mi = tl.full([tm], float("-inf"), dtype=torch.float32)
        li = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(n):
            values = x[tm, tn].to(torch.float32)
            m_next = torch.maximum(mi, torch.amax(values, dim=1))
            li = li * torch.exp(mi - m_next) + torch.sum(torch.exp(values - m_next[:, None]), dim=1)
            mi = m_next
        for tn in tl.tile(n):
            out[tm, tn] = (torch.exp(x[tm, tn].to(torch.float32) - mi[:, None]) / li[:, None]).to(x.dtype)
    return out


def r_two_carry(x):
    return torch.softmax(x.float(), dim=1).to(x.dtype)


def k_two_loops(x, y):
    """Two top-level loops: one kernel with a section of the grid for each."""
    a = torch.empty_like(x)
    b = torch.empty_like(y)
    for t in tl.tile(x.shape[0]):
        a[t] = x[t] * 2
    for tm, tn in tl.tile(y.shape):
        b[tm, tn] = y[tm, tn] - 1
    return a, b


def r_two_loops(x, y):
    return x * 2, y - 1


# reductions of values whose padded lanes are not the reduction's identity
def k_padded_reduce(x):
    m, n = x.shape
    s = torch.empty([m], dtype=torch.float32, device=x.device)
    mx = torch.empty([m], dtype=x.dtype, device=x.device)
    mn = torch.empty([m], dtype=x.dtype, device=x.device)
    am = torch.empty([m], dtype=torch.int64, device=x.device)
    an = torch.empty([m], dtype=torch.int64, device=x.device)
    stats = torch.empty([m, 3], dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        row = x[tm, :]
        s[tm] = torch.sum(torch.exp(row.to(torch.float32)), dim=1) + torch.mean(row.to(torch.float32) + 1, dim=1)
        mx[tm] = torch.amax(row - 10, dim=1)
        mn[tm] = torch.amin(row + 10, dim=1)
        am[tm] = torch.argmax(row - 10, dim=1)
        an[tm] = torch.argmin(row + 10, dim=1)
        rowf = row.to(torch.float32)
        stats[tm, 0] = torch.var(rowf, dim=1, correction=0)
        stats[tm, 1] = torch.std(rowf, dim=1, correction=0)
        stats[tm, 2] = torch.logsumexp(rowf, dim=1)
    return s, mx, mn, am, an, stats


def r_padded_reduce(x):
    a = x.float()
    stats = torch.stack([a.var(1, correction=0), a.std(1, correction=0), a.logsumexp(1)], dim=1)
    return (a.exp().sum(1) + (a + 1).mean(1), (x - 10).amax(1), (x + 10).amin(1),
            (x - 10).argmax(1), (x + 10).argmin(1), stats)


def k_bool_reduce(x):
    m, n = x.shape
    count = torch.empty([m], dtype=torch.int64, device=x.device)
    flags = torch.empty([m, 2], dtype=torch.bool, device=x.device)
    for tm in tl.tile(m):
        positive = x[tm, :] > 0
        count[tm] = positive.sum(dim=1)
        flags[tm, 0] = torch.any(x[tm, :] > 1.5, dim=1)
        flags[tm, 1] = torch.all(x[tm, :] > -1.5, dim=1)
    return count, flags


def r_bool_reduce(x):
    return (x > 0).sum(1), torch.stack([(x > 1.5).any(1), (x > -1.5).all(1)], dim=1)


def k_looped_reduce(x):
    """Reductions over a tile dimension inside a sequential loop, along each axis."""
    m, n = x.shape
    rows = torch.empty([m, 2], dtype=torch.float32, device=x.device)
    cols = torch.empty([n], dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        total = tl.zeros([tm], dtype=torch.float32)
        low = tl.full([tm], float("inf"), dtype=torch.float32)
        for tn in tl.tile(n):
            block = x[tm, tn].to(torch.float32)
            total = total + torch.sum(torch.exp(block), dim=1)
            low = torch.minimum(low, torch.amin(block + 5, dim=1))
        rows[tm, 0] = total
        rows[tm, 1] = low
    for tn in tl.tile(n):
        acc = tl.full([tn], float("-inf"), dtype=torch.float32)
        for tm in tl.tile(m):
            acc = torch.maximum(acc, torch.amax(x[tm, tn].to(torch.float32) - 5, dim=0))
        cols[tn] = acc
    return rows, cols


def r_looped_reduce(x):
    a = x.float()
    return torch.stack([a.exp().sum(1), (a + 5).amin(1)], dim=1), (a - 5).amax(0)


def k_cumsum(x):
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = torch.cumsum(x[tm, :], dim=1)
    return out


def r_cumsum(x):
    return x.float().cumsum(1).to(x.dtype)


def k_tile_attrs(x):
    """Tiles used as values: indices, begin/end/count/id, a static `tl.tile(begin, end)`, torch.arange."""
    m, n = x.shape
    out = torch.zeros_like(x)
    info = torch.zeros([m, 4], dtype=torch.int32, device=x.device)
    for tm, tn in tl.tile([m, n]):
        out[tm, tn] = x[tm, tn] + (tm.index[:, None] * 100 + tn.index[None, :]).to(x.dtype)
    for tm in tl.tile(min(2, m), m):  # (a static begin past the end is an error, as in Helion)
        ones = tl.full([tm], 1, dtype=torch.int32)
        info[tm, 0] = ones * tm.begin
        info[tm, 1] = ones * tm.end
        info[tm, 2] = ones * tm.count
        info[tm, 3] = (ones[:, None] * torch.arange(0, 4, dtype=torch.int32)[None, :]).sum(dim=1)
    return out, info


def r_tile_attrs(x, *, config):
    m, n = x.shape
    blocks = config.block_sizes
    idx = (torch.arange(m)[:, None] * 100 + torch.arange(n)[None, :]).to(x.dtype)
    info = torch.zeros([m, 4], dtype=torch.int32)
    bm = blocks[2]
    count = -(-(m - 2) // bm)  # tm.count: the tiles of the loop over [2, m), as in Helion (none when m <= 2)
    for begin in range(2, m, bm):
        end = min(begin + bm, m)
        info[begin:end] = torch.tensor([begin, end, count, 6], dtype=torch.int32)
    return x + idx, info


def k_scalar_index_loop(x, scale):
    """An inner `tl.grid` loop: scalar column indices; a Python float argument (specialised)."""
    m, n = x.shape
    out = torch.empty([m], dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        acc = tl.zeros([tm], dtype=torch.float32)
        for j in tl.grid(n):
            acc = acc + x[tm, j].to(torch.float32) * scale
        out[tm] = acc + x[tm, n - 1].to(torch.float32)
    return out


def r_scalar_index_loop(x, scale):
    return x.float().sum(1) * scale + x[:, -1].float()


def k_fixed_blocks(x):
    """An explicit block size and one shared by two loops (`tl.register_block_size`)."""
    m, n = x.shape
    out = torch.empty_like(x)
    bn = tl.register_block_size(n)
    for tm in tl.tile(m, block_size=4):
        total = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(n, block_size=bn):
            total = total + torch.sum(x[tm, tn].to(torch.float32), dim=1)
        for tn in tl.tile(n, block_size=bn):
            out[tm, tn] = (x[tm, tn].to(torch.float32) - total[:, None] / n).to(x.dtype)
    return out


def r_fixed_blocks(x):
    a = x.float()
    return (a - a.mean(1, keepdim=True)).to(x.dtype)


def k_dot_fused(x, y):
    """Matrix-product operands whose padded k lanes are not 0 (exp(0) = 1): the k mask must apply."""
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=torch.float32, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            a = torch.exp(x[tm, tk].to(torch.float32)).to(x.dtype)
            acc = torch.addmm(acc, a, y[tk, tn] + 1)
        out[tm, tn] = acc
    return out


def r_dot_fused(x, y):
    return x.float().exp().to(x.dtype).float() @ (y + 1).float()


def k_small_ints(a, b, flags):
    """int8 / uint8 / int16 / bool inputs, promoted as PyTorch does."""
    out = torch.empty(a.shape, dtype=torch.int32, device=a.device)
    picked = torch.empty(a.shape, dtype=torch.float32, device=a.device)
    for tm, tn in tl.tile(a.shape):
        va, vb = a[tm, tn], b[tm, tn]
        out[tm, tn] = va.to(torch.int32) * 3 + vb + (va < 0).to(torch.int32)
        picked[tm, tn] = torch.where(flags[tm, tn], va.to(torch.float32), -1.0)
    return out, picked


def r_small_ints(a, b, flags):
    return a.to(torch.int32) * 3 + b + (a < 0).to(torch.int32), torch.where(flags, a.float(), -1.0)


def k_float64(x, y):
    out = torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        out[tm, tn] = torch.exp(x[tm, tn]) * y[tm, tn] + torch.sqrt(y[tm, tn].abs())
    return out


def r_float64(x, y):
    return torch.exp(x) * y + torch.sqrt(y.abs())


def k_nan_inf(x):
    """NaN and inf inputs: reductions and pointwise ops propagate or detect them as PyTorch does."""
    m, n = x.shape
    hi = torch.empty([m], dtype=x.dtype, device=x.device)
    lo = torch.empty([m], dtype=x.dtype, device=x.device)
    total = torch.empty([m], dtype=torch.float32, device=x.device)
    out = torch.empty_like(x)
    flags = torch.empty([m, n], dtype=torch.int32, device=x.device)
    for tm in tl.tile(m):
        row = x[tm, :]
        hi[tm] = torch.amax(row, dim=1)
        lo[tm] = torch.amin(row, dim=1)
        total[tm] = torch.sum(torch.where(torch.isnan(row), 0.0, row.to(torch.float32)), dim=1)
        out[tm, :] = torch.clamp(row, -1.0, 1.0) + torch.maximum(row, torch.zeros_like(row))
        flags[tm, :] = (torch.isnan(row).to(torch.int32) + 2 * torch.isinf(row).to(torch.int32)
                        + 4 * torch.isfinite(row).to(torch.int32))
    return hi, lo, total, out, flags


def r_nan_inf(x):
    a = x.float()
    flags = x.isnan().int() + 2 * x.isinf().int() + 4 * x.isfinite().int()
    return (x.amax(1), x.amin(1), torch.where(a.isnan(), 0.0, a).sum(1),
            (torch.clamp(a, -1.0, 1.0) + torch.maximum(a, torch.zeros_like(a))).to(x.dtype), flags)


# --- inputs ----------------------------------------------------------------------------------
def randn(shape, dtype):
    return torch.randn(shape, dtype=torch.float32).to(dtype)


def size(draw, lo=1, hi=70):
    return draw(st.integers(lo, hi))


def laid_out(draw, t):
    """`t`, or a copy of it with the same values in a transposed or offset, strided layout."""
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided"]), label="layout")
    if layout == "transposed":
        return t.t().contiguous().t()
    if layout == "strided":
        big = torch.zeros((t.shape[0] + 1, t.shape[1] * 2), dtype=t.dtype)
        big[1:, ::2] = t
        return big[1:, ::2]
    return t


def two(draw, dtype):
    m, n = size(draw), size(draw)
    x, y = randn((m, n), dtype), randn((m, n), dtype)
    return laid_out(draw, x), y


def two_ties(draw, dtype):
    """Values on a coarse grid, so equal elements (ties) occur."""
    m, n = size(draw), size(draw)
    return ((torch.randint(-4, 5, (m, n)) / 2).to(dtype), (torch.randint(-4, 5, (m, n)) / 2).to(dtype))


def two_ints(draw, dtype):
    m, n = size(draw), size(draw)
    x = torch.randint(-50, 51, (m, n), dtype=dtype)
    y = torch.randint(1, 8, (m, n), dtype=dtype) * (torch.randint(0, 2, (m, n), dtype=dtype) * 2 - 1)
    return x, y


def two_floats_divmod(draw, dtype):
    m, n = size(draw), size(draw)
    x = (torch.randint(-40, 41, (m, n)) / 4).to(dtype)
    y = (torch.randint(1, 8, (m, n)) * (torch.randint(0, 2, (m, n)) * 2 - 1) / 2).to(dtype)
    return x, y


def one(draw, dtype):
    return (randn((size(draw), size(draw)), dtype),)


def one_ties(draw, dtype):
    return ((torch.randint(-3, 4, (size(draw), size(draw))) / 2).to(dtype),)


def one_int(draw, dtype):
    bound = draw(st.sampled_from([100, 2 ** 30]), label="int magnitude")
    return (torch.randint(-bound, bound + 1, (size(draw), size(draw)), dtype=dtype),)


def one_prod(draw, dtype):
    m, n = size(draw), size(draw, 1, 40)
    return ((1 + 0.05 * torch.randn(m, n)).to(dtype),)


def norm_args(draw, dtype):
    m, n = size(draw), size(draw)
    return randn((m, n), dtype), randn((n,), dtype), randn((n,), dtype)


def rms_args(draw, dtype):
    m, n = size(draw), size(draw)
    return randn((m, n), dtype), randn((n,), dtype)


def pow2_cols(draw, dtype):
    return (randn((size(draw), draw(st.sampled_from([2, 4, 8, 16, 32]))), dtype),)


def mm_args(draw, dtype):
    m, k, n = size(draw, 1, 50), size(draw, 1, 50), size(draw, 1, 50)
    return randn((m, k), dtype), randn((k, n), dtype)


def addmm_args(draw, dtype):
    x, y = mm_args(draw, dtype)
    return x, y, randn((y.shape[1],), dtype)


def bmm_args(draw, dtype):
    b, m, k, n = size(draw, 1, 3), size(draw, 1, 24), size(draw, 1, 40), size(draw, 1, 24)
    return randn((b, m, k), dtype), randn((b, k, n), dtype)


def embedding_args(draw, dtype):
    rows, num, dim = size(draw, 1, 40), size(draw, 1, 40), size(draw, 1, 40)
    index_dtype = draw(st.sampled_from([torch.int64, torch.int32]))
    return torch.randint(0, rows, (num,), dtype=index_dtype), randn((rows, dim), dtype)


def pick_args(draw, dtype):
    n, v = size(draw), size(draw)
    return randn((n, v), dtype), torch.randint(0, v, (n,), dtype=torch.int64)


def jagged_args(draw, dtype):
    lengths = draw(st.lists(st.integers(0, 30), min_size=1, max_size=5))
    d = size(draw, 1, 40)
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.tensor(lengths), 0)
    return randn((int(offsets[-1]), d), dtype), offsets


def one_coarse(draw, dtype):
    """Eighths in [-3, 3]: x - 10 and x + 10 stay exact in bfloat16, so arg-reductions are well defined
    (Triton's CPU interpreter truncates float32 -> bfloat16 instead of rounding: see test_rules.py)."""
    values = (torch.randint(-24, 25, (size(draw), size(draw))) / 8).to(dtype)
    return (laid_out(draw, values),)


def scalar_args(draw, dtype):
    scale = draw(st.sampled_from([0.5, -2.0, 3.0]))
    return randn((size(draw, 1, 40), size(draw, 1, 12)), dtype), scale


def small_int_args(draw, dtype):
    m, n = size(draw), size(draw)
    return (torch.randint(-100, 100, (m, n), dtype=torch.int8), torch.randint(0, 255, (m, n), dtype=torch.uint8),
            torch.rand(m, n) > 0.5)


def two_f64(draw, dtype):
    m, n = size(draw), size(draw)
    return torch.randn(m, n, dtype=torch.float64), torch.randn(m, n, dtype=torch.float64)


def with_nan_inf(draw, dtype):
    m, n = size(draw), size(draw)
    x = torch.randn(m, n)
    special = torch.rand(m, n)
    x[special < 0.05] = float("nan")
    x[(special >= 0.05) & (special < 0.08)] = float("inf")
    x[(special >= 0.08) & (special < 0.11)] = float("-inf")
    return (x.to(dtype),)


def two_loops_args(draw, dtype):
    return randn((size(draw),), dtype), randn((size(draw), size(draw)), dtype)


@dataclass(frozen=True)
class Case:
    fn: Callable
    args: Callable
    ref: Callable
    dtypes: tuple = FLOATS
    tol: dict = field(default_factory=dict)  # per output dtype, overrides TOL
    ref_needs_config: bool = False

    @property
    def name(self):
        return self.fn.__name__[2:]


CASES = [
    # several ops, each rounded to the half dtype, with cancellation: errors of 1 ulp of the intermediates (~8)
    Case(k_arith, two, r_arith, tol={torch.bfloat16: (0.15, 4e-2), torch.float16: (0.02, 1e-2)}),
    Case(k_compare_where, two_ties, r_compare_where),
    Case(k_clamp_minmax, two, r_clamp_minmax),
    Case(k_pow, two, r_pow, tol={torch.float32: (1e-3, 1e-4)}),
    Case(k_unary_math, two, r_unary_math, tol={torch.float32: (1e-3, 1e-4)}),
    Case(k_casts, one, r_casts, dtypes=(torch.float32,)),
    Case(k_int_ops, two_ints, r_int_ops, dtypes=(torch.int32, torch.int64)),
    Case(k_float_divmod, two_floats_divmod, r_float_divmod),
    Case(k_gelu_silu, two, r_gelu_silu, tol={torch.float32: (1e-3, 1e-4)}),
    Case(k_row_reduce, one, r_row_reduce),
    Case(k_col_reduce, one, r_col_reduce),
    Case(k_arg_reduce, one_ties, r_arg_reduce),
    Case(k_prod, one_prod, r_prod),
    Case(k_int_sum, one_int, r_int_sum, dtypes=(torch.int32,)),
    Case(k_softmax, one, r_softmax),
    Case(k_layer_norm, norm_args, r_layer_norm),
    Case(k_rms_norm, rms_args, r_rms_norm),
    Case(k_views, one, r_views),
    Case(k_reshape, pow2_cols, r_reshape),
    # acc + matmul(half, half): each k-tile's product is rounded to the half dtype before it is added,
    # so the result differs from one fp32 matmul (and between implementations) by a few ulps per k-tile.
    Case(k_matmul, mm_args, r_matmul, tol={torch.bfloat16: (0.25, 4e-2), torch.float16: (0.03, 1e-2)}),
    Case(k_addmm_epilogue, addmm_args, r_addmm_epilogue),
    Case(k_bmm, bmm_args, r_bmm),
    Case(k_tl_dot, mm_args, r_tl_dot, dtypes=(torch.float32, torch.bfloat16)),
    Case(k_embedding, embedding_args, r_embedding),
    Case(k_pick, pick_args, r_pick),
    Case(k_jagged, jagged_args, r_jagged),
    Case(k_two_carry, one, r_two_carry),
    Case(k_two_loops, two_loops_args, r_two_loops, dtypes=(torch.float32,)),
    Case(k_padded_reduce, one_coarse, r_padded_reduce, tol={torch.float32: (1e-3, 1e-4)}),
    Case(k_bool_reduce, one, r_bool_reduce),
    Case(k_looped_reduce, one, r_looped_reduce, tol={torch.float32: (1e-3, 1e-4)}),
    # running sums of ~70 values cancel: bf16 results near 0 carry the ulps of partial sums up to ~10
    Case(k_cumsum, one, r_cumsum, tol={torch.bfloat16: (0.13, 4e-2), torch.float16: (0.02, 1e-2)}),
    Case(k_tile_attrs, one, r_tile_attrs, dtypes=(torch.float32,), ref_needs_config=True),
    Case(k_scalar_index_loop, scalar_args, r_scalar_index_loop),
    Case(k_fixed_blocks, one, r_fixed_blocks),
    Case(k_dot_fused, mm_args, r_dot_fused, tol={torch.float32: (1e-3, 1e-4), torch.float16: (0.05, 1e-2), torch.bfloat16: (0.3, 4e-2)}),
    Case(k_small_ints, small_int_args, r_small_ints, dtypes=(None,)),
    Case(k_float64, two_f64, r_float64, dtypes=(torch.float64,)),
    Case(k_nan_inf, with_nan_inf, r_nan_inf),
]


# --- checking --------------------------------------------------------------------------------
def draw_config(draw, program) -> tfn.Config:
    """A power-of-two block size per block symbol, from a few tiles per dimension to one tile."""
    sizes = []
    for block in program.blocks:
        extent = max(block.extent or 32, 1)  # None: bounds only known on the device; <= 0: an empty loop
        top = max(0, math.ceil(math.log2(extent)))  # one tile covers the extent
        low = max(0, top - int(math.log2(MAX_TILES)) - 1)
        sizes.append(2 ** draw(st.integers(low, top), label=f"log2 block {block.id}"))
    indexing = draw(st.sampled_from(["pointer", "block_ptr", "tensor_descriptor"]), label="indexing")
    return tfn.Config(block_sizes=sizes, num_warps=draw(st.sampled_from([1, 2, 4])), indexing=indexing)


def flat(value):
    return value if isinstance(value, tuple) else (value,)


def assert_agree(got, want, case, dtype, what):
    """Outputs equal (integers, bools) or close for the output dtype, or for the half dtype the inputs had."""
    got, want = flat(got), flat(want)
    assert len(got) == len(want), what
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape, f"{what} output {i}: {g.dtype}{list(g.shape)} vs {w.dtype}{list(w.shape)}"
        if w.dtype in EXACT:
            assert torch.equal(g, w), f"{what} output {i} differs"
        else:
            key = dtype if dtype in HALF and w.dtype == torch.float32 else w.dtype
            atol, rtol = case.tol.get(key, TOL[key])
            torch.testing.assert_close(g, w, atol=atol, rtol=rtol, equal_nan=True, msg=lambda m: f"{what} output {i}: {m}")


SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))


def check(case, data, device="cpu"):
    """Draw inputs and a Config; compiled, interpreted and eager results agree (compared on the CPU)."""
    dtype = data.draw(st.sampled_from(case.dtypes), label="dtype")
    torch.manual_seed(data.draw(st.integers(0, 2 ** 16), label="seed"))
    args = case.args(data.draw, dtype)
    program = tfn.make_ir(case.fn)(*args)
    config = draw_config(data.draw, program)
    before = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    expected = case.ref(*before, **({"config": config} if case.ref_needs_config else {}))
    if device != "cpu":
        args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)
    if data.draw(st.booleans(), label="through tfn.jit(fn, config=cfg)"):
        compiled = tfn.jit(case.fn, config=config)(*args)
    else:
        compiled = tfn.jit(case.fn).lower(*args, config=config).compile()(*args)
    interpreted = tfn.interpret(case.fn, config=config)(*args)
    compiled, interpreted = (tuple(v.cpu() for v in flat(out)) for out in (compiled, interpreted))
    assert_agree(interpreted, expected, case, dtype, f"interpret vs eager under {config}")
    assert_agree(compiled, expected, case, dtype, f"compiled vs eager under {config}")
    assert_agree(compiled, interpreted, case, dtype, f"compiled vs interpret under {config}")
    for a, b in zip(args, before):
        assert not isinstance(a, torch.Tensor) or torch.equal(a.cpu().nan_to_num(), b.nan_to_num()), "an input was modified"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@SETTINGS
@given(data=st.data())
def test_compiled_equals_interpret_equals_eager(case, data):
    check(case, data)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_compiled_on_gpu_equals_interpret_equals_eager(case, data):
    """The same corpus compiled for the GPU (tl.dot on tensor cores, real bf16 rounding)."""
    check(case, data, device="cuda")


@SETTINGS
@given(data=st.data())
def test_default_config_agrees(data):
    """Without a Config, the heuristic default is used by jit and by the interpreter alike."""
    case = data.draw(st.sampled_from([c for c in CASES if c.fn in (k_arith, k_softmax, k_matmul, k_row_reduce)]))
    dtype = data.draw(st.sampled_from(case.dtypes))
    args = case.args(data.draw, dtype)
    got = tfn.jit(case.fn)(*args)
    assert_agree(got, case.ref(*args), case, dtype, "jit (default config) vs eager")
    assert_agree(got, tfn.interpret(case.fn)(*args), case, dtype, "jit vs interpret (default config)")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_compiles_for_hopper_without_a_gpu(case, data):
    """What the interpreter runs also compiles for sm_90 (Triton's front end and ptxas, no GPU needed)."""
    dtype = data.draw(st.sampled_from(case.dtypes), label="dtype")
    args = case.args(data.draw, dtype)
    config = draw_config(data.draw, tfn.make_ir(case.fn)(*args))
    compiled = compile_for_gpu(case.fn, *args, config=config)
    assert ".target sm_90" in compiled.asm["ptx"]
