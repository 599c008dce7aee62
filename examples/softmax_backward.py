"""Softmax backward: given y = softmax(x) and dy, grad_x = y * (dy - sum(y * dy, dim=1))."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50), "large": (4096, 4096)}


@tfn.jit
def softmax_backward(y, dy):
    m, _ = y.shape
    grad_x = torch.empty_like(y)
    for tm in tl.tile(m):
        y_rows = y[tm, :].to(torch.float32)
        dy_rows = dy[tm, :].to(torch.float32)
        dot = torch.sum(y_rows * dy_rows, dim=1, keepdim=True)
        grad_x[tm, :] = y_rows * (dy_rows - dot)
    return grad_x


def reference(y, dy):
    y32, dy32 = y.float(), dy.float()
    return (y32 * (dy32 - (y32 * dy32).sum(dim=1, keepdim=True))).to(y.dtype)


def make_inputs(device, dtype, size="small"):
    shape = SIZES[size]
    y = torch.softmax(torch.randn(shape, device=device, dtype=torch.float32), dim=1).to(dtype)
    return y, torch.randn(shape, device=device, dtype=dtype)


KERNELS = (softmax_backward,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
