"""Embedding lookup (a port of Helion's embedding example): indices of any shape pick rows of the
weight table; the gather is an indexed load `weight[indices[tile_b], tile_e]`."""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel()
def embedding(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    x_flat = x.reshape(-1)
    _, dim = weight.size()
    out = torch.empty([x_flat.size(0), dim], dtype=weight.dtype, device=weight.device)
    for tile_b, tile_e in hl.tile([x_flat.size(0), dim]):
        out[tile_b, tile_e] = weight[x_flat[tile_b], tile_e]
    return out.view(*x.size(), dim)


def reference_embedding(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.embedding(x, weight)


def main() -> None:
    x = torch.randint(0, 16, [256, 32], dtype=torch.int32)
    weight = torch.randn([16, 64])
    torch.testing.assert_close(embedding(x, weight), reference_embedding(x, weight), rtol=0, atol=0)
    print("embedding: OK")


if __name__ == "__main__":
    main()
