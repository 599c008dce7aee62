"""Batched matrix multiply (a port of Helion's bmm example): the grid covers (batch, m, n) tiles and
`torch.baddbmm` accumulates over tiles of k."""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel(static_shapes=True)
def bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    batch, m, k = a.size()
    batch2, k2, n = b.size()
    assert batch == batch2 and k == k2, "bmm: batch and inner dimensions must match"
    out = torch.empty([batch, m, n], dtype=torch.promote_types(a.dtype, b.dtype), device=a.device)
    for tile_b, tile_m, tile_n in hl.tile([batch, m, n]):
        acc = hl.zeros([tile_b, tile_m, tile_n], dtype=torch.float32)
        for tile_k in hl.tile(k):
            acc = torch.baddbmm(acc, a[tile_b, tile_m, tile_k], b[tile_b, tile_k, tile_n])
        out[tile_b, tile_m, tile_n] = acc
    return out


def reference_bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.bmm(a, b)


def main() -> None:
    a, b = torch.randn([8, 64, 96]), torch.randn([8, 96, 48])
    torch.testing.assert_close(bmm(a, b), reference_bmm(a, b), rtol=1e-4, atol=1e-4)
    print("bmm: OK")


if __name__ == "__main__":
    main()
