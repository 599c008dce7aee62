"""Sums of very long rows (a port of Helion's long_sum example), three ways:

- `long_sum`: a [tile_m, block_n] accumulator summed over column tiles, reduced once at the end
  (made before the column loop, so its block_n dim is the block's full lanes: lane j sums the
  columns k * block_n + j).
- `long_sum_rows`: the same loop with a [tile_m] accumulator (each column tile reduced at once).
- `long_sum_reduction`: the whole row in one expression; `Config(reduction_loops=[chunk])` makes
  tilefn loop over the row in chunks of that size.
"""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel()
def long_sum(x: torch.Tensor) -> torch.Tensor:
    m, n = x.size()
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    block_size_n = hl.register_block_size(n)
    for tile_m in hl.tile(m):
        acc = hl.zeros([tile_m, block_size_n], dtype=x.dtype)
        for tile_n in hl.tile(n, block_size=block_size_n):
            acc += x[tile_m, tile_n]
        out[tile_m] = acc.sum(-1)
    return out


@helion.kernel()
def long_sum_rows(x: torch.Tensor) -> torch.Tensor:
    m, n = x.size()
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tile_m in hl.tile(m):
        acc = hl.zeros([tile_m], dtype=torch.float32)
        for tile_n in hl.tile(n):
            acc += x[tile_m, tile_n].to(torch.float32).sum(-1)
        out[tile_m] = acc
    return out


@helion.kernel()
def long_sum_reduction(x: torch.Tensor) -> torch.Tensor:
    m, _n = x.size()
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tile_m in hl.tile(m):
        out[tile_m] = x[tile_m, :].sum(-1)
    return out


def reference_sum(x: torch.Tensor) -> torch.Tensor:
    return x.sum(-1)


def main() -> None:
    x = torch.randn([4, 32768])
    for kernel in (long_sum_rows, long_sum_reduction):
        torch.testing.assert_close(kernel(x), reference_sum(x), rtol=1e-3, atol=1e-3)
    print("long_sum: OK")


if __name__ == "__main__":
    main()
