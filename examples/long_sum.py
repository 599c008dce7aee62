"""Row sum of long rows: an inner loop over column tiles with a float32 accumulator carry."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50), "large": (4096, 131072)}


@tfn.jit
def long_sum(x):
    m, n = x.shape
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        acc = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(n):                       # sequential inside the kernel
            acc = acc + x[tm, tn].to(torch.float32).sum(dim=1)
        out[tm] = acc
    return out


def reference(x):
    return x.to(torch.float32).sum(dim=1).to(x.dtype)


def make_inputs(device, dtype, size="small"):
    return (torch.randn(SIZES[size], device=device, dtype=dtype),)


KERNELS = (long_sum,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
