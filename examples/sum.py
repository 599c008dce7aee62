"""Row sum: each program loads whole rows and reduces them in one step."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50), "large": (8192, 4096)}


@tfn.jit
def row_sum(x):
    m, _ = x.shape
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        out[tm] = x[tm, :].to(torch.float32).sum(dim=1)   # accumulate in float32
    return out


def reference(x):
    return x.to(torch.float32).sum(dim=1).to(x.dtype)


def make_inputs(device, dtype, size="small"):
    return (torch.randn(SIZES[size], device=device, dtype=dtype),)


KERNELS = (row_sum,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
