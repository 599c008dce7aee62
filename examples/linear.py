"""x @ w.T (torch.nn.functional.linear's layout: w is [out_features, in_features]), accumulated in float32."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50, 29), "large": (4096, 4096, 4096)}


@tfn.jit
def linear(x, w):
    m, k = x.shape
    n, _ = w.shape
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = torch.addmm(acc, x[tm, tk], w[tn, tk].T)
        out[tm, tn] = acc.to(out.dtype)
    return out


def reference(x, w):
    return torch.nn.functional.linear(x, w)


def make_inputs(device, dtype, size="small"):
    m, k, n = SIZES[size]
    return torch.randn(m, k, device=device, dtype=dtype), torch.randn(n, k, device=device, dtype=dtype)


KERNELS = (linear,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
