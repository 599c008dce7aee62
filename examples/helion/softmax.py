"""Row softmax four ways, and its backward (a port of Helion's softmax examples).

- `softmax`: whole rows per program, one torch call.
- `softmax_decomposed`: the same with max, exp and sum written out.
- `softmax_two_pass`: rows too long for one tile: a first loop over column tiles keeps a
  running max and a running sum rescaled to it; a second loop writes the normalised values.
- `softmax_bwd`: grad_x = y * (dy - sum(y * dy)), also in two loops over column tiles.
"""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel()
def softmax(x: torch.Tensor) -> torch.Tensor:
    n, _m = x.size()
    out = torch.empty_like(x)
    for tile_n in hl.tile(n):
        out[tile_n, :] = torch.nn.functional.softmax(x[tile_n, :], dim=1)
    return out


@helion.kernel()
def softmax_decomposed(x: torch.Tensor) -> torch.Tensor:
    n, _m = x.size()
    out = torch.empty_like(x)
    for tile_n in hl.tile(n):
        rows = x[tile_n, :]
        row_max = torch.amax(rows, dim=1, keepdim=True)
        numerator = torch.exp(rows - row_max)
        out[tile_n, :] = numerator / torch.sum(numerator, dim=1, keepdim=True)
    return out


@helion.kernel()
def softmax_two_pass(x: torch.Tensor) -> torch.Tensor:
    m, n = x.size()
    out = torch.empty_like(x)
    block_m = hl.register_block_size(m)
    block_n = hl.register_block_size(n)
    for tile_m in hl.tile(m, block_size=block_m):
        running_max = hl.full([tile_m], float("-inf"), dtype=torch.float32)
        running_sum = hl.zeros([tile_m], dtype=torch.float32)
        for tile_n in hl.tile(n, block_size=block_n):
            chunk = x[tile_m, tile_n]
            new_max = torch.maximum(running_max, torch.amax(chunk, dim=1))
            rescale = torch.exp(running_max - new_max)
            running_sum = running_sum * rescale + torch.exp(chunk - new_max[:, None]).sum(dim=1)
            running_max = new_max
        for tile_n in hl.tile(n, block_size=block_n):
            chunk = x[tile_m, tile_n]
            out[tile_m, tile_n] = torch.exp(chunk - running_max[:, None]) / running_sum[:, None]
    return out


@helion.kernel()
def softmax_bwd(grad_output: torch.Tensor, softmax_output: torch.Tensor) -> torch.Tensor:
    m, n = grad_output.size()
    grad_input = torch.empty_like(grad_output)
    for tile_m in hl.tile(m):
        dot = hl.zeros([tile_m], dtype=torch.float32)
        for tile_n in hl.tile(n):
            dot += torch.sum(softmax_output[tile_m, tile_n] * grad_output[tile_m, tile_n], dim=1)
        for tile_n in hl.tile(n):
            y = softmax_output[tile_m, tile_n]
            grad_input[tile_m, tile_n] = y * (grad_output[tile_m, tile_n] - dot[:, None])
    return grad_input


def reference_softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.softmax(x, dim=1)


def reference_softmax_bwd(grad_output: torch.Tensor, softmax_output: torch.Tensor) -> torch.Tensor:
    y = softmax_output.float()
    dy = grad_output.float()
    return (y * (dy - (y * dy).sum(dim=1, keepdim=True))).to(grad_output.dtype)


def main() -> None:
    x = torch.randn([256, 1000])
    for kernel in (softmax, softmax_decomposed, softmax_two_pass):
        torch.testing.assert_close(kernel(x), reference_softmax(x))
    y, dy = reference_softmax(x), torch.randn_like(x)
    torch.testing.assert_close(softmax_bwd(dy, y), reference_softmax_bwd(dy, y))
    print("softmax: OK")


if __name__ == "__main__":
    main()
