"""hl.rand / hl.randint under Helion's signatures, and Helion's low-memory dropout pattern."""
from __future__ import annotations

import pytest
import torch

import tilefn.helion as helion
import tilefn.helion.language as hl
from tilefn.trace import philox


def _rand_2d(x: torch.Tensor, seed: int) -> torch.Tensor:
    out = torch.empty_like(x)
    m, n = x.shape
    for tile_m, tile_n in hl.tile([m, n]):
        out[tile_m, tile_n] = hl.rand([tile_m, tile_n], seed=seed)
    return out


def _randint_rows(x: torch.Tensor, seed: int) -> torch.Tensor:
    out = torch.empty(x.shape, dtype=torch.int32, device=x.device)
    m, n = x.shape
    for tile_m in hl.tile(m):
        out[tile_m, :] = hl.randint([tile_m, n], low=-7, high=23, seed=seed)
    return out


def _dropout(x: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    out = torch.empty_like(x)
    for tidx in hl.tile(x.numel()):
        keep = hl.rand([tidx], seed=seed) > p
        out[tidx] = torch.where(keep, x[tidx] / (1 - p), 0.0)
    return out


@pytest.mark.parametrize("block_sizes", [[8, 8], [16, 32], [32, 16]])
def test_hl_rand_is_the_same_for_every_block_size(block_sizes):
    kernel = helion.kernel(_rand_2d, config=helion.Config(block_sizes=block_sizes))
    x = torch.zeros(37, 45)
    expected = philox.rand(torch.tensor(42), torch.arange(37 * 45).view(37, 45))
    assert torch.equal(kernel(x, 42).view(torch.int32), expected.view(torch.int32))


def test_hl_randint_over_a_whole_row():
    kernel = helion.kernel(_randint_rows, config=helion.Config(block_sizes=[4]))
    x = torch.zeros(10, 24)
    got = kernel(x, 5)
    assert torch.equal(got, philox.randint(torch.tensor(5), torch.arange(240).view(10, 24), low=-7, high=23))
    assert got.min() >= -7 and got.max() < 23


def test_low_memory_dropout_masks_forward_and_backward_alike():
    kernel = helion.kernel(_dropout, config=helion.Config(block_sizes=[64]))
    x, grad = torch.rand(1000) + 1, torch.rand(1000) + 1
    y, dx = kernel(x, 0.25, 123), kernel(grad, 0.25, 123)
    assert torch.equal(y != 0, dx != 0) and abs((y != 0).float().mean() - 0.75) < 0.05
    torch.testing.assert_close(y[y != 0], x[y != 0] / 0.75)


def _triple_dropout(x: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    (n,) = x.shape
    for tile in hl.tile(n):
        base = hl.tile_index(tile).to(torch.int64)
        r0, r1, r2, _ = hl.rand4x(seed=42, offsets=base)
        keep = (r0 > 0.1) & (r1 > 0.2) & (r2 > 0.3)
        out[tile] = x[tile] * keep.to(x.dtype)
    return out


@pytest.mark.parametrize("block_size", [16, 64])
def test_hl_rand4x_draws_four_words_at_the_given_offsets(block_size):
    kernel = helion.kernel(_triple_dropout, config=helion.Config(block_sizes=[block_size]))
    x = torch.randn(300)
    r0, r1, r2, _ = philox.rand4x(torch.tensor(42), torch.arange(300))
    expected = x * ((r0 > 0.1) & (r1 > 0.2) & (r2 > 0.3)).to(x.dtype)
    torch.testing.assert_close(kernel(x), expected, rtol=0, atol=0)
