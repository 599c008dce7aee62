"""tilefn.helion.language names added with issue 12: hl.split / hl.join in a Helion-style kernel."""
from __future__ import annotations

import pytest
import torch

import tilefn.helion as helion
import tilefn.helion.language as hl

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Each (even, odd) pair of a row rotated by its angle, as Helion's rope example spells it."""
    m, n = x.size()
    out = torch.empty_like(x)
    for tile_m in hl.tile(m):
        even, odd = hl.split(x[tile_m, :].reshape([tile_m, n // 2, 2]))
        c, s = cos[tile_m, :], sin[tile_m, :]
        out[tile_m, :] = hl.join(even * c - odd * s, odd * c + even * s).reshape([tile_m, n])
    return out


def test_split_and_join_rotate_pairs_like_eager_torch():
    x, angle = torch.randn(6, 16), torch.rand(6, 8) * 6
    cos, sin = angle.cos(), angle.sin()
    got = helion.kernel(config=helion.Config(block_sizes=[4]))(rotate_pairs)(x, cos, sin)
    even, odd = x[:, 0::2], x[:, 1::2]
    expected = torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1).reshape(6, 16)
    torch.testing.assert_close(got, expected)


def test_split_and_join_are_exported_under_helions_names():
    assert {"split", "join"} <= set(hl.__all__)
    assert hl.split.__module__ == "tilefn.lang" and hl.join.__module__ == "tilefn.lang"
