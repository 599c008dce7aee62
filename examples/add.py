"""Elementwise add: one tile loop over every dimension of the output."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50), "large": (8192, 8192)}


@tfn.jit
def add(x, y):
    out = torch.empty_like(x)
    for tile in tl.tile(out.shape):          # a tuple of tiles, one per dimension
        out[tile] = x[tile] + y[tile]
    return out


def reference(x, y):
    return x + y


def make_inputs(device, dtype, size="small"):
    shape = SIZES[size]
    return torch.randn(shape, device=device, dtype=dtype), torch.randn(shape, device=device, dtype=dtype)


KERNELS = (add,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
