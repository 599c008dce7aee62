"""Kernels and eager references of test_jit_vs_interpret.py: pointwise, row/column reductions, fused
row ops and views."""
from __future__ import annotations

import torch

from tilefn import lang as tl


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
