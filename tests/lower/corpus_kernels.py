"""Kernels and eager references of test_jit_vs_interpret.py: matrix products, gathers, loops and
reductions over padded lanes."""
from __future__ import annotations

import torch

from tilefn import lang as tl
from kernels import bmm as k_bmm, matmul_plus as k_matmul, two_loops as k_two_loops  # noqa: F401  (the corpus re-exports them)


# matrix products
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
