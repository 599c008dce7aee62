"""Embedding lookup: gather rows of a weight table by integer indices (of any shape)."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": ((5, 9), 100, 50), "large": ((64, 512), 65536, 1024)}  # index shape, rows, dim


@tfn.jit
def embedding(indices, weight):
    flat = indices.reshape(-1)                                     # host code
    num, dim = flat.shape[0], weight.shape[1]
    out = torch.empty([num, dim], dtype=weight.dtype, device=weight.device)
    for tb, td in tl.tile([num, dim]):
        out[tb, td] = weight[flat[tb], td]                         # rows picked by a gather
    return out.view(*indices.shape, dim)


def reference(indices, weight):
    return torch.nn.functional.embedding(indices, weight)


def make_inputs(device, dtype, size="small"):
    index_shape, rows, dim = SIZES[size]
    indices = torch.randint(0, rows, index_shape, device=device, dtype=torch.int64)
    return indices, torch.randn(rows, dim, device=device, dtype=dtype)


KERNELS = (embedding,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
