"""Kernels many test modules share (tests/ is on sys.path through its conftest): one definition each."""
from __future__ import annotations

import torch

from tilefn import lang as tl


def add(x, y):
    out = torch.empty_like(x)
    for t in tl.tile(out.shape):
        out[t] = x[t] + y[t]
    return out


def softmax(x):
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = torch.softmax(x[tm, :], dim=1)
    return out


def layer_norm(x, w, b):
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = torch.nn.functional.layer_norm(x[tm, :], [x.shape[1]], w[:], b[:], eps=1e-5)
    return out


def matmul(x, y):
    """examples/matmul.py's: float32 accumulation by addmm over tiles of k."""
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = torch.addmm(acc, x[tm, tk], y[tk, tn])
        out[tm, tn] = acc.to(out.dtype)
    return out


def matmul_plus(x, y):
    """matmul with the product added to the accumulator (`acc + x @ y`, a dot then an add) instead of addmm."""
    m, k = x.shape
    n = y.shape[1]
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = acc + torch.matmul(x[tm, tk], y[tk, tn])
        out[tm, tn] = acc.to(out.dtype)
    return out


def bmm(x, y):
    b, m, k = x.shape
    n = y.shape[2]
    out = torch.empty([b, m, n], dtype=x.dtype, device=x.device)
    for tb, tm, tn in tl.tile([b, m, n]):
        acc = tl.zeros([tb, tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = torch.baddbmm(acc, x[tb, tm, tk], y[tb, tk, tn])
        out[tb, tm, tn] = acc.to(out.dtype)
    return out


def two_loops(x, y):
    """Two top-level loops: one kernel with a section of the grid for each."""
    a = torch.empty_like(x)
    b = torch.empty_like(y)
    for t in tl.tile(x.shape[0]):
        a[t] = x[t] * 2
    for tm, tn in tl.tile(y.shape):
        b[tm, tn] = y[tm, tn] - 1
    return a, b


def two_inner_loops(x):
    """Row sums, then the rows minus their mean: two inner loops, in program order."""
    m, n = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        acc = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(n):
            acc = acc + x[tm, tn].sum(dim=1)
        mean = acc / n
        for tn in tl.tile(n):
            out[tm, tn] = x[tm, tn] - mean[:, None]
    return out
