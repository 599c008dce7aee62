"""Concatenate two matrices along dim 1 (a port of Helion's concatenate example).

One tile loop covers the output; a column tile may straddle the seam, so each input is loaded
with an extra mask for the columns it owns and the two are merged with `torch.where`.

`concat2d_dim1` indexes `x` with the output's column tile, as Helion's example does: the tile's
range (x's and y's columns) runs past x's width, so that access is also masked against x's own
size. `concat2d_dim1_indices` indexes x with the tile's indices instead.
"""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel()
def concat2d_dim1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    assert x.size(0) == y.size(0), "concat2d_dim1: row counts differ"
    out = torch.empty([x.size(0), x.size(1) + y.size(1)], dtype=x.dtype, device=x.device)
    for tile_r, tile_c in hl.tile(out.size()):
        cols = hl.tile_index(tile_c)
        from_x = (cols < x.size(1))[None, :]
        x_part = hl.load(x, [tile_r, tile_c], extra_mask=from_x)
        y_part = hl.load(y, [tile_r, cols - x.size(1)], extra_mask=(cols >= x.size(1))[None, :])
        out[tile_r, tile_c] = torch.where(from_x, x_part, y_part)
    return out


@helion.kernel()
def concat2d_dim1_indices(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    assert x.size(0) == y.size(0), "concat2d_dim1: row counts differ"
    out = torch.empty([x.size(0), x.size(1) + y.size(1)], dtype=x.dtype, device=x.device)
    for tile_r, tile_c in hl.tile(out.size()):
        cols = hl.tile_index(tile_c)
        from_x = (cols < x.size(1))[None, :]
        x_part = hl.load(x, [tile_r, cols], extra_mask=from_x)
        y_part = hl.load(y, [tile_r, cols - x.size(1)], extra_mask=(cols >= x.size(1))[None, :])
        out[tile_r, tile_c] = torch.where(from_x, x_part, y_part)
    return out


def reference_concat(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, y], dim=1)


def main() -> None:
    x, y = torch.randn([300, 400]), torch.randn([300, 600])
    torch.testing.assert_close(concat2d_dim1_indices(x, y), reference_concat(x, y), rtol=0, atol=0)
    print("concatenate: OK")


if __name__ == "__main__":
    main()
