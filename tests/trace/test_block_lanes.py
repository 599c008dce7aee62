"""Values over a block's full lanes made before the loop that block sizes (Helion's long_sum, kl_div,
jsd): compiled (Triton's CPU interpreter), tfn.interpret and eager torch agree under drawn Configs."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as hs

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import LoopCarryError
from tilefn.testing import assert_matches, compile_for_gpu

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def lane_sums(x):
    """Lane j of `acc` sums the columns k * B + j; the lanes past a ragged edge keep their sums."""
    m, n = x.size()
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    bn = tl.register_block_size(n)
    for tm in tl.tile(m):
        acc = tl.zeros([tm, bn], dtype=x.dtype)
        for tn in tl.tile(n, block_size=bn):
            acc += x[tm, tn]
        out[tm] = acc.sum(-1)
    return out


def lane_maxima(x):
    """A carry whose update is not zero on padded lanes (exp(0) = 1): those lanes must keep their values."""
    m, n = x.size()
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    bn = tl.register_block_size(n)
    for tm in tl.tile(m):
        best = tl.full([tm, bn], float("-inf"), dtype=x.dtype)
        for tn in tl.tile(n, block_size=bn):
            best = torch.maximum(best, torch.exp(x[tm, tn]))
        out[tm] = best.amax(-1)
    return out


def kl_rows(y_pred, y_true):
    """Helion's kl_div shape: a [tile, block] accumulator and a [block_m, block_n] one inside both loops."""
    bt, v = y_pred.shape
    loss = torch.zeros([bt], dtype=torch.float32, device=y_pred.device)
    bn, bm = tl.register_block_size(v), tl.register_block_size(bt)
    for tile_bt in tl.tile(bt, block_size=bm):
        loss_sum = tl.zeros([tile_bt, bn], dtype=torch.float32)
        for tile_v in tl.tile(v, block_size=bn):
            kl = tl.zeros([bm, bn], dtype=torch.float32)
            t = y_true[tile_bt, tile_v]
            kl += t * (torch.log(torch.clamp(t, min=1e-10)) - y_pred[tile_bt, tile_v])
            loss_sum += kl
        loss[tile_bt] = loss_sum.sum(dim=-1)
    return loss


def read_only(x):
    """A full-lanes value read (not rebound) in the loop: seen on the tile's lanes there."""
    m, n = x.size()
    out = torch.empty_like(x)
    bn = tl.register_block_size(n)
    for tm in tl.tile(m):
        ramp = tl.full([tm, bn], 2.0, dtype=x.dtype)
        for tn in tl.tile(n, block_size=bn):
            out[tm, tn] = x[tm, tn] * ramp
    return out


def _kl(y_pred, y_true):
    return (y_true * (torch.log(torch.clamp(y_true, min=1e-10)) - y_pred)).sum(-1)


@settings(max_examples=8, deadline=None)
@given(data=hs.data(), m=hs.integers(1, 9), n=hs.integers(1, 70))
def test_an_accumulator_over_full_lanes_made_before_its_loop(data, m, n):
    x = torch.randn(m, n)
    for kernel, want in ((lane_sums, lambda x: x.sum(-1)), (lane_maxima, lambda x: torch.exp(x).amax(-1)),
                         (read_only, lambda x: x * 2)):
        assert_matches(kernel, want, x, configs=[data.draw(tt.configs(kernel, x))])


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), bt=hs.integers(1, 9), v=hs.integers(1, 50))
def test_kl_div_with_block_sized_accumulators(data, bt, v):
    y_pred, y_true = torch.randn(bt, v).log_softmax(-1), torch.randn(bt, v).softmax(-1)
    assert_matches(kl_rows, _kl, y_pred, y_true, configs=[data.draw(tt.configs(kl_rows, y_pred, y_true))])


def test_full_lane_values_compile_for_hopper():
    x = torch.randn(8, 100)
    compile_for_gpu(lane_maxima, x, config=tfn.Config(block_sizes=[32, 8]))
    compile_for_gpu(kl_rows, x.log_softmax(-1), x.softmax(-1))


def test_a_carry_rebound_to_another_shape_names_both():
    def kernel(x):
        m, n = x.size()
        out = torch.empty([m], dtype=x.dtype, device=x.device)
        bn = tl.register_block_size(n)
        for tm in tl.tile(m):
            acc = tl.zeros([tm, bn], dtype=x.dtype)
            for tn in tl.tile(n, block_size=bn):
                acc = acc.sum(-1)
            out[tm] = acc
        return out

    with pytest.raises(LoopCarryError, match="enters the loop as f32"):
        tfn.interpret(kernel)(torch.randn(4, 8))


def persistent_grouped_rows(a, b, offsets, workers: int):
    """Helion's persistent grouped GEMM: `tl.arange(BM)` of block sizes no loop uses, block sizes in
    arithmetic (cdiv of a loaded size), a device-bounded grid and masked gathers of the rows."""
    bm, bn = tl.register_block_size(4, 16), tl.register_block_size(4, 16)
    n = b.size(1)
    out = torch.zeros(a.size(0), n)
    for worker in tl.grid(workers):
        for g in tl.grid(offsets.size(0) - 1):
            start, end = offsets[g], offsets[g + 1]
            m_tiles = (end - start + bm - 1) // bm
            n_tiles = (n + bn - 1) // bn
            for local in tl.grid(m_tiles * n_tiles):
                tile = local * workers + worker
                if tile < m_tiles * n_tiles:
                    rows = start + (tile % m_tiles) * bm + tl.arange(bm)
                    cols = (tile // m_tiles) * bn + tl.arange(bn)
                    valid = (rows < end)[:, None] & (cols < n)[None, :]
                    acc = tl.zeros([bm, bn], dtype=torch.float32)
                    for k in tl.tile(a.size(1)):
                        acc = torch.addmm(acc, tl.load(a, [rows, k.index]), tl.load(b, [k.index, cols]))
                    tl.store(out, [rows, cols], acc, extra_mask=valid)
    return out


@settings(max_examples=5, deadline=None)
@given(data=hs.data(), sizes=hs.lists(hs.integers(0, 9), min_size=1, max_size=3), k=hs.integers(1, 12),
       n=hs.integers(1, 20))
def test_aranges_of_block_sizes_no_loop_uses(data, sizes, k, n):
    offsets = torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()], dtype=torch.int32)
    a, b = torch.randn(max(int(offsets[-1]), 1), k), torch.randn(k, n)
    want = lambda a, b, offsets, workers: torch.cat([a[: int(offsets[-1])] @ b, torch.zeros(a.size(0) - int(offsets[-1]), n)])  # noqa: E731
    config = data.draw(tt.configs(persistent_grouped_rows, a, b, offsets, 2))
    assert_matches(persistent_grouped_rows, want, a, b, offsets, 2, configs=[config])


def test_aranges_of_block_sizes_no_loop_uses_compile_for_hopper():
    offsets = torch.tensor([0, 5, 5, 12], dtype=torch.int32)
    compile_for_gpu(persistent_grouped_rows, torch.randn(12, 16), torch.randn(16, 16), offsets, 2)
