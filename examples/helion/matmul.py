"""Matrix multiply (a port of Helion's matmul example), two ways: `torch.addmm` into a float32
accumulator, and the same with `hl.dot`; plus a linear layer with its bias and ReLU fused into the
epilogue (Helion passes the epilogue as a callable argument; tilefn kernels take tensors and
numbers, so the bias is an argument here)."""
from __future__ import annotations

import torch
from torch import Tensor

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel(static_shapes=True)
def matmul(x: Tensor, y: Tensor) -> Tensor:
    m, k = x.size()
    k2, n = y.size()
    assert k == k2, f"size mismatch {k} != {k2}"
    out = torch.empty([m, n], dtype=torch.promote_types(x.dtype, y.dtype), device=x.device)
    for tile_m, tile_n in hl.tile([m, n]):
        acc = hl.zeros([tile_m, tile_n], dtype=torch.float32)
        for tile_k in hl.tile(k):
            acc = torch.addmm(acc, x[tile_m, tile_k], y[tile_k, tile_n])
        out[tile_m, tile_n] = acc
    return out


@helion.kernel(static_shapes=True)
def matmul_dot(x: Tensor, y: Tensor) -> Tensor:
    m, k = x.size()
    _, n = y.size()
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tile_m, tile_n in hl.tile([m, n]):
        acc = hl.zeros([tile_m, tile_n], dtype=torch.float32)
        for tile_k in hl.tile(k):
            acc = hl.dot(x[tile_m, tile_k], y[tile_k, tile_n], acc=acc)
        out[tile_m, tile_n] = acc.to(x.dtype)
    return out


@helion.kernel(static_shapes=True)
def linear_relu(x: Tensor, y: Tensor, bias: Tensor) -> Tensor:
    m, k = x.size()
    _, n = y.size()
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tile_m, tile_n in hl.tile([m, n]):
        acc = hl.zeros([tile_m, tile_n], dtype=torch.float32)
        for tile_k in hl.tile(k):
            acc = torch.addmm(acc, x[tile_m, tile_k], y[tile_k, tile_n])
        out[tile_m, tile_n] = torch.relu(acc + bias[tile_n])
    return out


def reference_matmul(x: Tensor, y: Tensor) -> Tensor:
    return torch.matmul(x, y)


def reference_linear_relu(x: Tensor, y: Tensor, bias: Tensor) -> Tensor:
    return torch.relu(x @ y + bias)


def main() -> None:
    x, y, bias = torch.randn([256, 128]), torch.randn([128, 192]), torch.randn([192])
    for kernel in (matmul, matmul_dot):
        torch.testing.assert_close(kernel(x, y), reference_matmul(x, y), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(linear_relu(x, y, bias), reference_linear_relu(x, y, bias), rtol=1e-4, atol=1e-4)
    print("matmul: OK")


if __name__ == "__main__":
    main()
