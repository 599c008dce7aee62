"""Elementwise exp."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50), "large": (8192, 8192)}


@tfn.jit
def exp(x):
    out = torch.empty_like(x)
    for tile in tl.tile(x.shape):
        out[tile] = torch.exp(x[tile])
    return out


def reference(x):
    return torch.exp(x)


def make_inputs(device, dtype, size="small"):
    return (torch.randn(SIZES[size], device=device, dtype=dtype),)


KERNELS = (exp,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
