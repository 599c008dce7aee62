"""Block sizes as values: `tl.register_block_size(...)` and `tile.block_size` computing with ints.

Inside a tile loop a block size is an int32 device scalar (`bs * 2`, `2 + bs`, `n // bs`, `n % bs`,
comparisons), a shape entry (the tile of the open loop it sizes) and an `arange` length; host code
cannot read it (the Config picks it when the kernel is lowered) and gets a clear error.
Results are checked against eager PyTorch computed here from the block size, compiled and interpreted.
"""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import TracingError

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
I32 = torch.int32


def arithmetic(x):
    n = x.size(0)
    out = torch.zeros([8, n], dtype=torch.int32, device=x.device)
    bs = tl.register_block_size(n)
    for t in tl.tile(n, block_size=bs):
        out[0, t] = bs * 3 + 1
        out[1, t] = 2 + bs
        out[2, t] = 100 // bs + 7 % bs
        out[3, t] = (t.index < bs).to(torch.int32)
        out[4, t] = (2 - bs) * (bs >= 4)
        out[5, t] = t.block_size * 2 - t.end
        out[6, t] = 100 - bs // 2 + (bs == t.block_size)
        out[7, t] = torch.minimum(t.index, bs)
    return out


def expected_arithmetic(n, bs):
    i = torch.arange(n, dtype=I32)
    end = torch.clamp((i // bs + 1) * bs, max=n)
    rows = [torch.full([n], bs * 3 + 1), torch.full([n], 2 + bs), torch.full([n], 100 // bs + 7 % bs),
            (i < bs).to(I32), torch.full([n], (2 - bs) * (bs >= 4)), bs * 2 - end,
            torch.full([n], 100 - bs // 2 + 1), torch.minimum(i, torch.tensor(bs, dtype=I32))]
    return torch.stack([r.to(I32) for r in rows])


@pytest.mark.parametrize("n,bs", [(37, 8), (16, 16), (5, 2)])
def test_block_size_arithmetic_with_ints(n, bs):
    x = torch.randn(n)
    config = tfn.Config(block_sizes=[bs])
    expected = expected_arithmetic(n, bs)
    assert torch.equal(tfn.interpret(arithmetic, config=config)(x), expected)
    assert torch.equal(tfn.jit(arithmetic, config=config)(x), expected)


def shape_entries(x):
    m, n = x.shape
    out = torch.empty([m, n], dtype=torch.float32, device=x.device)
    bn = tl.register_block_size(n)
    for tm in tl.tile(m):
        for tn in tl.tile(n, block_size=bn):
            ramp = tl.zeros([tm, bn], dtype=torch.float32) + torch.arange(bn)[None, :].to(torch.float32)
            out[tm, tn] = x[tm, tn] * 2 + ramp + torch.zeros([tn.block_size])[None, :]
    return out


@pytest.mark.parametrize("m,n,bm,bn", [(6, 20, 4, 8), (3, 16, 2, 16)])
def test_a_block_size_as_a_shape_entry_is_the_tile_it_sizes(m, n, bm, bn):
    x = torch.randn(m, n)
    ramp = (torch.arange(n) % bn).to(torch.float32)
    expected = x * 2 + ramp[None, :]
    config = tfn.Config(block_sizes=[bn, bm])
    torch.testing.assert_close(tfn.interpret(shape_entries, config=config)(x), expected)
    torch.testing.assert_close(tfn.jit(shape_entries, config=config)(x), expected)


def test_a_block_size_is_no_python_int():
    def kernel(x):
        bs = tl.register_block_size(x.size(0))
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0), block_size=bs):
            out[t] = x[t] * list(range(8))[bs]
        return out

    with pytest.raises(TracingError, match="not a Python int"):
        tfn.make_ir(kernel)(torch.randn(8))
