"""Jagged sums and means (ports of Helion's jagged_sum and jagged_mean examples).

Row i of a jagged tensor is `x_data[x_offsets[i]:x_offsets[i + 1], :]`. Helion's examples walk the
rows' variable lengths with `hl.jagged_tile` (tilefn has it too, see tests/trace/test_jagged.py);
these ports use the two forms Helion also accepts:

- `jagged_sum` / `jagged_mean`: a tile of rows at a time, looping up to the longest row (`max_nnz`,
  computed by the caller) and masking each row's loads beyond its own length with `extra_mask`.
- `jagged_sum_rows`: one program per row (`hl.grid`) whose inner loop has data-dependent bounds.

Helion reads the row starts as `x_offsets[tile_b]` (a tile over num_rows indexing a dimension
of num_rows + 1); tilefn accepts that now, and these ports gather with `x_offsets[tile_b.index]`.
"""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel()
def jagged_sum(x_data: torch.Tensor, x_offsets: torch.Tensor, max_nnz: int) -> torch.Tensor:
    m = x_data.shape[1]
    num_rows = x_offsets.size(0) - 1
    out = torch.zeros([num_rows, m], dtype=x_data.dtype, device=x_data.device)
    x_flat = x_data.view(-1)
    for tile_b in hl.tile(num_rows):
        starts = x_offsets[tile_b.index]
        nnz = x_offsets[tile_b.index + 1] - starts
        for tile_m in hl.tile(m):
            row_sums = hl.zeros([tile_b, tile_m], dtype=torch.float32)
            for tile_k in hl.tile(0, max_nnz):
                in_row = (tile_k.index[None, :] < nnz[:, None])[:, :, None]
                flat = (starts[:, None] + tile_k.index[None, :])[:, :, None] * m + tile_m.index[None, None, :]
                values = hl.load(x_flat, [flat], extra_mask=in_row)
                row_sums = row_sums + values.to(torch.float32).sum(dim=1)
            out[tile_b, tile_m] = row_sums
    return out


@helion.kernel()
def jagged_mean(x_data: torch.Tensor, x_offsets: torch.Tensor, x_feature_counts: torch.Tensor,
                max_m: int, max_nnz: int) -> torch.Tensor:
    """Mean of each row over its valid features only (features beyond a row's count are 0)."""
    num_rows = x_offsets.size(0) - 1
    out = torch.empty([num_rows, max_m], dtype=x_data.dtype, device=x_data.device)
    x_flat = x_data.view(-1)
    for tile_b in hl.tile(num_rows):
        starts = x_offsets[tile_b.index]
        nnz = x_offsets[tile_b.index + 1] - starts
        feature_counts = x_feature_counts[tile_b]
        for tile_m in hl.tile(max_m):
            row_sums = hl.zeros([tile_b, tile_m], dtype=torch.float32)
            for tile_k in hl.tile(0, max_nnz):
                in_row = (tile_k.index[None, :] < nnz[:, None])[:, :, None]
                flat = (starts[:, None] + tile_k.index[None, :])[:, :, None] * max_m + tile_m.index[None, None, :]
                row_sums += hl.load(x_flat, [flat], extra_mask=in_row).to(torch.float32).sum(dim=1)
            count = nnz.to(torch.float32)[:, None]
            valid = (count > 0) & (tile_m.index[None, :] < feature_counts[:, None])
            out[tile_b, tile_m] = torch.where(valid, row_sums / torch.clamp(count, min=1.0), 0.0)
    return out


@helion.kernel()
def jagged_sum_rows(x_data: torch.Tensor, x_offsets: torch.Tensor) -> torch.Tensor:
    m = x_data.shape[1]
    num_rows = x_offsets.size(0) - 1
    out = torch.empty([num_rows, m], dtype=x_data.dtype, device=x_data.device)
    for row in hl.grid(num_rows):
        start = x_offsets[row]
        end = x_offsets[row + 1]
        for tile_m in hl.tile(m):
            acc = hl.zeros([tile_m], dtype=torch.float32)
            for tile_k in hl.tile(start, end):
                acc = acc + x_data[tile_k, tile_m].to(torch.float32).sum(dim=0)
            out[row, tile_m] = acc
    return out


def reference_jagged_sum(x_data: torch.Tensor, x_offsets: torch.Tensor, max_nnz: int | None = None) -> torch.Tensor:
    bounds = x_offsets.tolist()
    rows = [x_data[b:e].float().sum(dim=0) for b, e in zip(bounds[:-1], bounds[1:])]
    return torch.stack(rows).to(x_data.dtype)


def reference_jagged_mean(x_data, x_offsets, x_feature_counts, max_m: int, max_nnz: int) -> torch.Tensor:
    num_rows = x_offsets.numel() - 1
    out = torch.zeros([num_rows, max_m], dtype=x_data.dtype, device=x_data.device)
    for i in range(num_rows):
        start, end, features = int(x_offsets[i]), int(x_offsets[i + 1]), int(x_feature_counts[i])
        if end > start:
            out[i, :features] = x_data[start:end, :features].mean(dim=0)
    return out


def make_jagged(num_rows: int, max_len: int, m: int, dtype=torch.float32, device="cpu"):
    """Random row lengths in [0, max_len] (the first row empty), the offsets and the values."""
    lengths = torch.randint(0, max_len + 1, [num_rows])
    lengths[0] = 0
    offsets = torch.zeros(num_rows + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(lengths, dim=0)
    values = torch.randn([int(offsets[-1]), m], dtype=dtype, device=device)
    return values, offsets.to(device), int(lengths.max())


def main() -> None:
    values, offsets, max_nnz = make_jagged(32, 64, 128)
    torch.testing.assert_close(jagged_sum(values, offsets, max_nnz), reference_jagged_sum(values, offsets),
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(jagged_sum_rows(values, offsets), reference_jagged_sum(values, offsets),
                               rtol=1e-4, atol=1e-4)
    counts = torch.randint(1, 129, [32], dtype=torch.int32)
    torch.testing.assert_close(jagged_mean(values, offsets, counts, 128, max_nnz),
                               reference_jagged_mean(values, offsets, counts, 128, max_nnz), rtol=1e-4, atol=1e-4)
    print("jagged: OK")


if __name__ == "__main__":
    main()
