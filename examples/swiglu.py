"""SwiGLU activation: silu(a) * b, elementwise over two inputs."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50), "large": (8192, 8192)}


@tfn.jit
def swiglu(a, b):
    out = torch.empty_like(a)
    for tile in tl.tile(a.shape):
        gate = a[tile].to(torch.float32)
        out[tile] = torch.nn.functional.silu(gate) * b[tile].to(torch.float32)
    return out


def reference(a, b):
    return (torch.nn.functional.silu(a.float()) * b.float()).to(a.dtype)


def make_inputs(device, dtype, size="small"):
    shape = SIZES[size]
    return torch.randn(shape, device=device, dtype=dtype), torch.randn(shape, device=device, dtype=dtype)


KERNELS = (swiglu,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
