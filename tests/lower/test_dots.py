"""Matrix products by operand dtype (tilefn/lower/dots.py, trace/ops/matmul.py): float64 in float64, int8
in int32 (with an int32 acc), other integers summed exactly, torch's `out_dtype` on mm/bmm/addmm/baddbmm."""
from __future__ import annotations

import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import DotDtypeError
from tilefn.testing import compile_for_gpu
from kernels import bmm  # (examples/bmm.py's: the batch tile of block size 1 by default, a pure carry)

SETTINGS = settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def dot_acc(x, y, acc_dtype: torch.dtype):
    """Helion's dot_kernel_acc_arg: tl.dot into an accumulator of `acc_dtype` over k tiles."""
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=acc_dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=acc_dtype)
        for tk in tl.tile(k):
            acc = tl.dot(x[tm, tk], y[tk, tn], acc=acc)
        out[tm, tn] = acc
    return out


def addmm_loop(x, y):
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=x.dtype)
        for tk in tl.tile(k):
            acc = torch.addmm(acc, x[tm, tk], y[tk, tn])
        out[tm, tn] = acc
    return out


def matrices(draw, dtype, low=-3, high=3):
    m, k, n = (draw(tt.sizes(1, 48)) for _ in range(3))
    return draw(tt.tensors((m, k), dtype, low=low, high=high)), draw(tt.tensors((k, n), dtype, low=low, high=high))


@SETTINGS
@given(data=st.data())
def test_float64_dots_are_computed_in_float64(data):
    """Before, a float64 tl.dot accumulated in float32: a silent wrong answer at float64's tolerance."""
    x, y = matrices(data.draw, torch.float64)
    x, y = x * 1e3 + 1 / 3, y * 1e-3 + 1 / 7  # (values float32 cannot hold)
    config = data.draw(tt.configs(addmm_loop, x, y))
    tt.assert_matches(addmm_loop, lambda x, y: x @ y, x, y, configs=[config], atol=1e-12, rtol=1e-12)


def test_float64_dot_compiles_to_float64_mma_on_hopper():
    x, y = torch.randn(64, 64, dtype=torch.float64), torch.randn(64, 64, dtype=torch.float64)
    ptx = compile_for_gpu(addmm_loop, x, y, config=tfn.Config(block_sizes=[64, 64, 32])).asm["ptx"]
    assert re.search(r"mma\.sync\.aligned\.\S+\.f64\.f64\.f64\.f64", ptx)


@pytest.mark.parametrize("dtype, low, high", [(torch.int8, -128, 127), (torch.uint8, 0, 255)], ids=["int8", "uint8"])
@SETTINGS
@given(data=st.data())
def test_8_bit_integer_dots_accumulate_in_int32(dtype, low, high, data):
    x, y = matrices(data.draw, dtype, low, high)
    config = data.draw(tt.configs(dot_acc, x, y, torch.int32))
    tt.assert_matches(dot_acc, lambda x, y, d: (x.long() @ y.long()).to(d), x, y, torch.int32, configs=[config])


def test_int8_dot_compiles_to_int8_wgmma_and_uint8_to_exact_sums_on_hopper():
    x, y = torch.randint(-9, 9, (64, 64), dtype=torch.int8), torch.randint(-9, 9, (64, 64), dtype=torch.int8)
    config = tfn.Config(block_sizes=[64, 64, 32])
    assert "wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8" in compile_for_gpu(dot_acc, x, y, torch.int32,
                                                                                 config=config).asm["ptx"]
    u8 = compile_for_gpu(dot_acc, x.to(torch.uint8), y.to(torch.uint8), torch.int32, config=config).asm["ptx"]
    assert ".target sm_90" in u8 and "mma" not in u8  # Triton's tl.dot takes no uint8


def test_an_integer_dot_into_a_float_accumulator_is_refused():
    """As Helion: int8 products accumulate in int32 (a TypeError, as Helion's tests expect of it)."""
    x = torch.randint(-9, 9, (32, 32), dtype=torch.int8)
    with pytest.raises(TypeError, match=r"test_dots.py:\d+: matrix product of torch.int8 values accumulates in int32"):
        tfn.jit(dot_acc)(x, x, torch.float32)


def attention_scores(q, k, v):
    """Helion's attention: torch.bmm(q, k^T, torch.float32) (out_dtype positional), baddbmm into float32."""
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    for tb, tm in tl.tile([q.shape[0], q.shape[1]]):
        qk = torch.bmm(q[tb, tm, :], k[tb, :, :].transpose(1, 2), torch.float32)
        acc = tl.zeros([tb, tm, v.shape[2]], dtype=torch.float32)
        acc = torch.baddbmm(acc, qk.to(v.dtype), v[tb, :, :])
        out[tb, tm, :] = acc.to(out.dtype)
    return out


def ref_attention_scores(q, k, v):
    qk = (q.float() @ k.float().transpose(1, 2)).to(v.dtype)
    return (qk.float() @ v.float()).to(q.dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
def test_bmm_with_a_positional_out_dtype_and_baddbmm(dtype):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(s, generator=g).div(4).to(dtype) for s in [(2, 24, 16), (2, 32, 16), (2, 32, 16)])
    tt.assert_matches(attention_scores, ref_attention_scores, q, k, v, configs=2,
                      atol=5e-2 if dtype != torch.float32 else None, rtol=5e-2 if dtype != torch.float32 else None)


def mm_out_dtype(x, y, out_dtype: torch.dtype):
    out = torch.empty([x.shape[0], y.shape[1]], dtype=out_dtype, device=x.device)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = torch.mm(x[tm, :], y[:, :], out_dtype=out_dtype)
    return out


def addmm_out_dtype(acc, x, y, out_dtype: torch.dtype):
    out = torch.empty(acc.shape, dtype=out_dtype, device=x.device)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = torch.addmm(acc[tm, :], x[tm, :], y[:, :], out_dtype, beta=0.5, alpha=2.0)
    return out


def test_mm_and_addmm_with_out_dtype_keep_the_float32_sum():
    """torch.mm(bf16, bf16, out_dtype=float32) is not rounded to bfloat16 (torch: CUDA only, so the reference
    is written out)."""
    g = torch.Generator().manual_seed(0)
    x, y = (torch.randn(s, generator=g).to(torch.bfloat16) for s in [(20, 48), (48, 24)])
    acc = torch.randn(20, 24, generator=g)
    tt.assert_matches(mm_out_dtype, lambda x, y, d: x.float() @ y.float(), x, y, torch.float32, configs=2)
    tt.assert_matches(addmm_out_dtype, lambda a, x, y, d: 0.5 * a + 2.0 * (x.float() @ y.float()), acc, x, y,
                      torch.float32, configs=2)


@pytest.mark.parametrize("dtype, out_dtype", [(torch.float32, torch.float16), (torch.bfloat16, torch.float16),
                                              (torch.int8, torch.int32)], ids=str)
def test_an_out_dtype_torch_refuses_is_refused(dtype, out_dtype):
    x = torch.ones(16, 16, dtype=dtype)
    with pytest.raises(DotDtypeError, match=r"out_dtype must be the input dtype .* or float32 for float16/bfloat16"):
        tfn.jit(mm_out_dtype)(x, x, out_dtype)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("blocks", [[64, 64, 32], [32, 32, 16], [16, 16, 8]])
def test_dots_by_dtype_on_gpu(blocks):
    g = torch.Generator().manual_seed(2)
    x, y = (torch.randn(s, generator=g, dtype=torch.float64) for s in [(130, 96), (96, 70)])
    x, y = (x * 1e3 + 1 / 3).cuda(), (y * 1e-3 + 1 / 7).cuda()
    config = tfn.Config(block_sizes=blocks)
    torch.testing.assert_close(tfn.jit(addmm_loop, config=config)(x, y), x @ y, atol=1e-12, rtol=1e-12)
    for dtype, low, high in [(torch.int8, -128, 128), (torch.uint8, 0, 256)]:
        a, b = (torch.randint(low, high, s, generator=g).to(dtype).cuda() for s in [(130, 96), (96, 70)])
        got = tfn.jit(dot_acc, config=config)(a, b, torch.int32)
        assert torch.equal(got.cpu(), (a.cpu().long() @ b.cpu().long()).int())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bmm_out_dtype_on_gpu_agrees_with_torch_on_gpu():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(s, generator=g).div(4).to(torch.bfloat16).cuda() for s in [(2, 64, 32), (2, 48, 32), (2, 48, 32)])
    want = torch.bmm(torch.bmm(q, k.transpose(1, 2), torch.float32).to(v.dtype), v, torch.float32).to(q.dtype)
    torch.testing.assert_close(tfn.jit(attention_scores)(q, k, v), want, atol=2e-2, rtol=2e-2)


def attention_by_head(q, k, v):
    """Helion's attention form: [batch*heads, seq, d] tiles of one batch (block 1 on the leading dim by
    default), 3-d carries, baddbmm into the accumulator, exp2 with a folded log2(e)."""
    bh, m, d = q.shape
    n = k.shape[1]
    out = torch.empty_like(q)
    for tb, tm in tl.tile([bh, m]):
        m_i = tl.full([tb, tm], float("-inf"), dtype=torch.float32)
        l_i = tl.full([tb, tm], 1.0, dtype=torch.float32)
        acc = tl.zeros([tb, tm, d], dtype=torch.float32)
        qb = q[tb, tm, :]
        for tn in tl.tile(n):
            qk = torch.bmm(qb * (1.44269504 / d ** 0.5), k[tb, tn, :].transpose(1, 2), torch.float32)
            m_ij = torch.maximum(m_i, torch.amax(qk, -1))
            p = torch.exp2(qk - m_ij[:, :, None])
            alpha = torch.exp2(m_i - m_ij)
            l_i = l_i * alpha + torch.sum(p, -1)
            acc = torch.baddbmm(acc * alpha[:, :, None], p.to(v.dtype), v[tb, tn, :])
            m_i = m_ij
        out[tb, tm, :] = (acc / l_i[:, :, None]).to(out.dtype)
    return out


def test_a_batch_of_one_dot_into_a_carried_accumulator_compiles_and_matches_eager():
    """Helion's attention example failed to compile on the H200 (Triton 3.6, PassManager::run failed): its
    3-d accumulator was reshaped to 2-d around each tl.dot. Default Config and a drawn one, against eager."""
    q, k, v = (torch.randn(2, 64, 32, dtype=torch.float16) for _ in range(3))
    want = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float())
    configs = [None, tfn.Config(block_sizes=[1, 32, 16])]
    tt.assert_matches(attention_by_head, lambda q, k, v: want.to(q.dtype), q, k, v, configs=configs,
                      atol=2e-2, rtol=2e-2)
    big = [torch.randn(4, 1024, 64, dtype=torch.float16) for _ in range(3)]
    assert "wgmma" in compile_for_gpu(attention_by_head, *big).asm["ptx"]  # (Hopper's tensor-core dot)


def test_a_batch_of_one_accumulator_is_carried_without_its_batch_axis():
    """bmm ran at 16% of cuBLAS on the H200 while its carried accumulator went through tl.sum / expand_dims
    around every tl.dot: it is now reshaped once before the k loop and once after it."""
    x, y = torch.randn(3, 40, 56, dtype=torch.float16), torch.randn(3, 56, 24, dtype=torch.float16)
    want = torch.bmm(x.float(), y.float()).to(x.dtype)
    configs = [None, tfn.Config(block_sizes=[1, 32, 16, 16]), tfn.Config(block_sizes=[2, 16, 16, 16])]
    tt.assert_matches(bmm, lambda x, y: want, x, y, configs=configs, atol=2e-2, rtol=2e-2)
    big = [torch.randn(8, 512, 512, dtype=torch.bfloat16) for _ in range(2)]
    source = tfn.jit(bmm).lower(*big).source
    loop = source[source.index("for off_"):source.index("tl.store")]
    assert "tl.sum(" not in loop and "tl.expand_dims(tl.dot" not in loop
    assert re.search(r"= tl\.reshape\(acc, \[BLOCK_\w+, BLOCK_\w+\]\)\n", source)
    assert "wgmma" in compile_for_gpu(bmm, *big).asm["ptx"]
