"""Kernels many test modules share (tests/ is on sys.path through its conftest): one definition each.

matmul, bmm and two_pass_softmax are examples/'s own (the plain functions under their `tfn.jit`): examples/ is appended to
sys.path, after everything else, so its modules shadow none."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from tilefn import lang as tl

EXAMPLES = str(Path(__file__).resolve().parents[1] / "examples")
if EXAMPLES not in sys.path:
    sys.path.append(EXAMPLES)

import bmm as bmm_example  # noqa: E402
import matmul as matmul_example  # noqa: E402
import softmax as softmax_example  # noqa: E402

matmul = matmul_example.matmul.fn  # float32 accumulation by addmm over tiles of k
bmm = bmm_example.bmm.fn  # the batched form, baddbmm over tiles of k
two_pass_softmax = softmax_example.softmax_two_pass.fn  # a running max and sum, then a second loop normalising


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
