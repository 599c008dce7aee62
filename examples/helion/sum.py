"""Sum over the last dimension (a port of Helion's sum example).

Each program takes whole rows (`x[tile_m, :]`); the reduction over the row is one torch call.
"""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel()
def sum_kernel(x: torch.Tensor) -> torch.Tensor:
    m, _n = x.size()
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tile_m in hl.tile(m):
        out[tile_m] = x[tile_m, :].sum(-1)
    return out


def reference_sum(x: torch.Tensor) -> torch.Tensor:
    return x.sum(-1)


def main() -> None:
    x = torch.randn([512, 1000])
    torch.testing.assert_close(sum_kernel(x), reference_sum(x), rtol=1e-4, atol=1e-4)
    print("sum: OK")


if __name__ == "__main__":
    main()
