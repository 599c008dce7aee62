"""LayerNorm with Welford's online mean and variance (a port of Helion's welford example).

A first loop over column tiles merges each tile's count, mean and sum of squared deviations into
running values (Chan's parallel update); a second loop normalises. The count of a tile is the
number of its valid columns, so a ragged last tile is counted right.
"""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel()
def welford(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, eps: float = 1e-05) -> torch.Tensor:
    m, n = x.size()
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tile_m in hl.tile(m):
        count = torch.zeros_like(x[tile_m, 0], dtype=torch.float32)
        mean = torch.zeros_like(count)
        m2 = torch.zeros_like(count)
        for tile_n in hl.tile(n):
            chunk = x[tile_m, tile_n].to(torch.float32)
            tile_count = (tile_n.index < n).to(torch.int32).sum()
            chunk_sum = torch.sum(chunk, dim=-1)
            chunk_mean = chunk_sum / tile_count
            chunk_m2 = torch.sum(chunk * chunk, dim=-1) - chunk_sum * chunk_mean
            delta = chunk_mean - mean
            new_count = count + tile_count
            mean = mean + delta * (tile_count / new_count)
            m2 = m2 + chunk_m2 + delta * delta * (count * tile_count / new_count)
            count = new_count
        rstd = torch.rsqrt(m2 / count + eps)
        for tile_n in hl.tile(n):
            centered = x[tile_m, tile_n].to(torch.float32) - mean[:, None]
            y = centered * rstd[:, None] * weight[tile_n][None, :] + bias[tile_n][None, :]
            out[tile_m, tile_n] = y.to(x.dtype)
    return out


def reference_welford(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, eps: float = 1e-05) -> torch.Tensor:
    return torch.nn.functional.layer_norm(x, [x.size(-1)], weight, bias, eps)


def main() -> None:
    weight, bias, x = torch.rand([1536]), torch.rand([1536]), torch.rand([256, 1536])
    torch.testing.assert_close(welford(weight, bias, x), reference_welford(weight, bias, x), rtol=1e-4, atol=1e-4)
    print("welford: OK")


if __name__ == "__main__":
    main()
