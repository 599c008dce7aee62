"""One-lane tile axes indexed as scalars (tilefn/lower/unit_axes.py): a batch of one lowers as 2-d loads,
a 2-d tl.dot and 2-d stores, with the same results as eager PyTorch and tfn.interpret."""
from __future__ import annotations

import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.testing import compile_for_gpu
from kernels import bmm, matmul

SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
FORMS = ("pointer", "block_ptr", "tensor_descriptor")


def scaled_scores(q, k):
    """Helion's attention's first product: a scaled load and a transposed load into a batch-of-one bmm."""
    bh, m, d = q.shape
    n = k.shape[1]
    out = torch.empty([bh, m, n], dtype=torch.float32, device=q.device)
    for tb, tm, tn in tl.tile([bh, m, n]):
        out[tb, tm, tn] = torch.bmm(q[tb, tm, :] * 0.5, k[tb, tn, :].transpose(1, 2), torch.float32)
    return out


def scaled(x, alpha):
    """Pointwise ops (one with a runtime float) between a load and a store, a one-lane tile on the middle axis."""
    out = torch.empty_like(x)
    for ti, tj, tk in tl.tile(x.shape):
        out[ti, tj, tk] = x[ti, tj, tk] * alpha + 1
    return out


@SETTINGS
@given(data=st.data())
def test_bmm_matches_eager_and_interpret_under_drawn_configs(data):
    b, m, k, n = (data.draw(tt.sizes(1, 40)) for _ in range(4))
    x, y = (data.draw(tt.tensors(shape, torch.float16)) for shape in ((b, m, k), (b, k, n)))
    config = data.draw(tt.configs(bmm, x, y))
    want = torch.bmm(x.float(), y.float()).to(x.dtype)
    tt.assert_matches(bmm, lambda x, y: want, x, y, configs=config, atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("blocks", [[1, 32, 16, 16], [2, 16, 16, 16], [1, 16, 32, 32]])
def test_bmm_with_batch_blocks_of_one_and_two_in_every_indexing_form(form, blocks):
    """Ragged m, k and n (masked lanes, a peeled k loop) beside a batch block of 1 (scalar-indexed) or 2 (3-d)."""
    x, y = torch.randn(3, 40, 56, dtype=torch.float16), torch.randn(3, 56, 24, dtype=torch.float16)
    want = torch.bmm(x.float(), y.float()).to(x.dtype)
    tt.assert_matches(bmm, lambda x, y: want, x, y, configs=tfn.Config(block_sizes=blocks, indexing=form),
                      atol=2e-2, rtol=2e-2)


def _k_loop(ttgir: str) -> str:
    """The body of the (one) k loop of a compiled matrix product, software pipelined."""
    body = ttgir[ttgir.index("scf.for"):]
    return body[:body.index("scf.yield")]


@pytest.mark.parametrize("form", FORMS)
def test_a_batch_of_one_bmm_loop_is_matmuls_loop(form):
    """The k loop of bmm (batch block 1) compiles for sm_90 to what matmul's does: no layout conversion and one
    wgmma per k step. Its loads reshaped from 3-d reached the tensor cores through registers instead: four
    convert_layouts and four serialised wgmmas per k step, bmm 64x512^3 at 48% of cuBLAS on the H200."""
    config = tfn.Config(block_sizes=[1, 128, 128, 64], indexing=form)
    x = torch.randn(8, 512, 512, dtype=torch.bfloat16)
    bmm_loop = _k_loop(compile_for_gpu(bmm, x, x, config=config).asm["ttgir"])
    mm_loop = _k_loop(compile_for_gpu(matmul, x[0], x[0], config=tfn.Config(block_sizes=[128, 128, 64],
                                                                              indexing=form)).asm["ttgir"])
    for op in ("ttg.convert_layout", "ttg.local_load", "ttng.warp_group_dot "):
        assert bmm_loop.count(op) == mm_loop.count(op), op
    assert bmm_loop.count("ttng.warp_group_dot ") == 1 and "ttg.convert_layout" not in bmm_loop


def test_a_batch_of_one_indexes_loads_and_the_store_by_its_offset():
    x = torch.randn(8, 512, 512, dtype=torch.bfloat16)
    source = tfn.jit(bmm, config=tfn.Config(block_sizes=[1, 128, 128, 64])).lower(x, x).source
    loads_and_stores = re.findall(r"tl\.(?:load|store)\((.*)", source)
    assert len(loads_and_stores) == 3
    assert all("off_tb * 262144" in a and "offs_tb" not in a for a in loads_and_stores)
    assert "tl.reshape(v" not in source  # (no operand reshaped before tl.dot)


@pytest.mark.parametrize("form", FORMS)
def test_scaled_and_transposed_operands_stay_2_d(form):
    q, k = torch.randn(3, 40, 32, dtype=torch.float16), torch.randn(3, 24, 32, dtype=torch.float16)
    want = torch.bmm(q.float() * 0.5, k.float().transpose(1, 2))
    config = tfn.Config(block_sizes=[1, 16, 16], indexing=form)
    tt.assert_matches(scaled_scores, lambda q, k: want, q, k, configs=config, atol=2e-2, rtol=2e-2)
    big = [torch.randn(4, 256, 64, dtype=torch.float16) for _ in range(2)]
    ttgir = compile_for_gpu(scaled_scores, *big, config=tfn.Config(block_sizes=[1, 128, 128], indexing=form)).asm["ttgir"]
    product = ttgir[:ttgir.index("ttng.warp_group_dot ")]  # (a descriptor store reshapes the result back to 3-d)
    assert "tt.reshape" not in product and ttgir.count("ttng.warp_group_dot ") == 1


def row_scaled(x):
    """Helion's rms_norm: a row statistic without keepdim, broadcast back by `[:, None]`, and stored too."""
    m, n = x.shape
    out = torch.empty_like(x)
    stat = torch.empty([m], dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        row = x[tm, :].to(torch.float32)
        inv = torch.rsqrt(torch.mean(row * row, dim=-1) + 1e-5)
        out[tm, :] = (row * inv[:, None]).to(x.dtype)
        stat[tm] = inv
    return out, stat


def row_scaled_reference(x):
    inv = torch.rsqrt(x.float().pow(2).mean(-1) + 1e-5)
    return (x.float() * inv[:, None]).to(x.dtype), inv


@pytest.mark.parametrize("rows", [1, 2])
def test_a_row_statistic_broadcast_back_keeps_a_batch_of_one_row_2_d(rows):
    """The loaded row feeds the store through a product with the broadcast statistic, which has no unit-free
    form: the row stays 2-d. (Its 1-d form mixed into the 2-d product made Triton convert layouts through shared
    memory: 1030 shared stores and 70 barriers a program, 10x slower on the H200.)"""
    x = torch.randn(6, 64)
    tt.assert_matches(row_scaled, row_scaled_reference, x, configs=tfn.Config(block_sizes=[rows]))
    big = torch.randn(2048, 4096, dtype=torch.float16)
    compiled = compile_for_gpu(row_scaled, big, config=tfn.Config(block_sizes=[rows], num_warps=4))
    assert compiled.asm["ptx"].count("st.shared") <= 4 and compiled.asm["ttgir"].count("convert_layout") <= 2


@SETTINGS
@given(data=st.data())
def test_a_one_lane_tile_on_a_middle_axis_through_a_pointwise_op(data):
    x = data.draw(tt.tensors(tt.shapes(3, 1, 24)))
    blocks = [data.draw(st.sampled_from([1, 2, 8])) for _ in range(3)]
    config = tfn.Config(block_sizes=blocks, indexing=data.draw(st.sampled_from(FORMS)))
    tt.assert_matches(scaled, lambda x, alpha: x * alpha + 1, x, 0.5, configs=config)


def test_a_one_lane_tile_on_a_middle_axis_is_indexed_by_its_offset():
    x = torch.randn(4, 6, 32)
    source = tfn.jit(scaled, config=tfn.Config(block_sizes=[4, 1, 32])).lower(x, 0.5).source
    assert re.search(r"tl\.load\(x \+ offs_ti\[:, None\] \* 192 \+ off_tj \* 32 \+ offs_tk\[None, :\]\)", source)
    assert re.search(r"tl\.store\(out \+ offs_ti\[:, None\] \* 192 \+ off_tj \* 32 \+ offs_tk\[None, :\], \w+_2d\)", source)


def test_a_masked_one_lane_tile_keeps_its_axis():
    """A dynamic batch extent needs its lanes' mask: that axis stays (no scalar index), results unchanged."""
    x, y = torch.randn(3, 40, 56, dtype=torch.float16), torch.randn(3, 56, 24, dtype=torch.float16)
    dynamic = tfn.jit(bmm, static_shapes=False, config=tfn.Config(block_sizes=[1, 16, 16, 16]))
    want = torch.bmm(x.float(), y.float()).to(x.dtype)
    torch.testing.assert_close(dynamic(x, y), want, atol=2e-2, rtol=2e-2)
    source = dynamic.lower(x, y).source
    assert "offs_tb[:, None, None]" in source
