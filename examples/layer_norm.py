"""LayerNorm over the last dimension, with weight and bias: whole rows per program."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50), "large": (4096, 4096)}


@tfn.jit
def layer_norm(x, weight, bias, eps: float = 1e-5):
    m, n = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        out[tm, :] = torch.nn.functional.layer_norm(x[tm, :], [n], weight[:], bias[:], eps)
    return out


def reference(x, weight, bias, eps: float = 1e-5):
    return torch.nn.functional.layer_norm(x, [x.shape[-1]], weight, bias, eps)


def make_inputs(device, dtype, size="small"):
    m, n = SIZES[size]
    x = torch.randn(m, n, device=device, dtype=dtype)
    weight = torch.randn(n, device=device, dtype=dtype)
    bias = torch.randn(n, device=device, dtype=dtype)
    return x, weight, bias


KERNELS = (layer_norm,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
