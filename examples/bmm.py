"""Batched matrix multiply: the grid covers (batch, m, n) tiles; baddbmm accumulates over k."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (3, 37, 50, 29), "large": (16, 1024, 1024, 1024)}


@tfn.jit
def bmm(x, y):
    b, m, k = x.shape
    _, _, n = y.shape
    out = torch.empty([b, m, n], dtype=x.dtype, device=x.device)
    for tb, tm, tn in tl.tile([b, m, n]):
        acc = tl.zeros([tb, tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = torch.baddbmm(acc, x[tb, tm, tk], y[tb, tk, tn])
        out[tb, tm, tn] = acc.to(out.dtype)
    return out


def reference(x, y):
    return torch.bmm(x, y)


def make_inputs(device, dtype, size="small"):
    b, m, k, n = SIZES[size]
    return torch.randn(b, m, k, device=device, dtype=dtype), torch.randn(b, k, n, device=device, dtype=dtype)


KERNELS = (bmm,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
