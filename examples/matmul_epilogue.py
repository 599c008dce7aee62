"""Matrix multiply with a fused epilogue: relu(x @ y + bias), applied to the float32 accumulator
before the one store, so the product never goes to memory unbiased."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50, 29), "large": (4096, 4096, 4096)}


@tfn.jit
def matmul_bias_relu(x, y, bias):
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = torch.addmm(acc, x[tm, tk], y[tk, tn])
        acc = acc + bias[tn].to(torch.float32)[None, :]
        out[tm, tn] = torch.relu(acc).to(out.dtype)
    return out


def reference(x, y, bias):
    return torch.relu(x.float() @ y.float() + bias.float()).to(x.dtype)


def make_inputs(device, dtype, size="small"):
    m, k, n = SIZES[size]
    x = torch.randn(m, k, device=device, dtype=dtype)
    y = torch.randn(k, n, device=device, dtype=dtype)
    bias = torch.randn(n, device=device, dtype=dtype)
    return x, y, bias


KERNELS = (matmul_bias_relu,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
