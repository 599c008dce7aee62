"""float8 (e4m3fn, e5m2) kernels (tilefn/lower/float8.py, lower/dots.py): casts bit for bit as torch's,
loads and stores, dots accumulating in float32, against eager torch and tfn.interpret, and for sm_90."""
from __future__ import annotations

import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import TracingError
from tilefn.testing import compile_for_gpu

FLOAT8 = [torch.float8_e4m3fn, torch.float8_e5m2]
SETTINGS = settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def cast(x, dtype: torch.dtype):
    out = torch.empty(x.shape, dtype=dtype, device=x.device)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t].to(dtype)
    return out


def edge_values(n: int = 1000) -> torch.Tensor:
    """Values at every rounding edge of both formats (ties, subnormals, overflow, infinities, NaN) and
    random ones over many binades."""
    edges = [448., 464., 470., 479.9, 480., 500., 1e6, float("inf"), float("-inf"), float("nan"), -500., 1e-9,
             2.0 ** -10, 0.75 * 2.0 ** -9, -0., 57344., 61439., 61440., 70000., 1.5e-5, 1e-8, 2.0 ** -7 * 1.0625,
             1.5 * 2.0 ** -15, 2.0 ** -17, 1.01 * 2.0 ** -17, 0.0625 * 1.0625, 0.0625 * 1.1875]
    g = torch.Generator().manual_seed(0)
    rest = torch.randn(n - len(edges), generator=g) * torch.exp(torch.randn(n - len(edges), generator=g) * 5)
    return torch.cat([torch.tensor(edges), rest])


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.float(), b.float()
    return bool(((a == b) | (a.isnan() & b.isnan())).all() and torch.equal(a.signbit() | a.isnan(), b.signbit() | b.isnan()))


@pytest.mark.parametrize("dst", FLOAT8, ids=str)
@pytest.mark.parametrize("src", [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int32, torch.int64],
                         ids=str)
def test_casts_to_float8_round_as_torch_does(src, dst):
    """Round to nearest even; e4m3fn saturates (infinities too), e5m2 overflows to infinity; NaN stays NaN.
    Triton's CPU interpreter's own casts get NaN, overflow and subnormals wrong: the bit code must not."""
    values = edge_values()
    x = values.to(src) if src.is_floating_point else values.clamp(-1e6, 1e6).nan_to_num(0).to(src)
    want = x.to(dst)
    assert same_values(tfn.jit(cast)(x, dst), want)
    assert same_values(tfn.interpret(cast)(x, dst), want)


@pytest.mark.parametrize("dst", [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int32,
                                 torch.bool] + FLOAT8, ids=str)
@pytest.mark.parametrize("src", FLOAT8, ids=str)
def test_casts_from_every_float8_value_are_exact(src, dst):
    x = torch.arange(256, dtype=torch.uint8).view(src)
    if not dst.is_floating_point and dst != torch.bool:
        x = x[x.float().isfinite()]  # (torch leaves NaN -> int undefined)
    want = x.to(dst)
    for got in (tfn.jit(cast)(x, dst), tfn.interpret(cast)(x, dst)):
        assert got.dtype == dst and same_values(got, want)


def scale_and_quantize(x, scale, dtype: torch.dtype):
    """A quantization epilogue: float8 in, float32 math, float8 out (ragged tiles: masked loads)."""
    out = torch.empty(x.shape, dtype=dtype, device=x.device)
    for tm, tn in tl.tile(x.shape):
        out[tm, tn] = (x[tm, tn].to(torch.float32) * scale).to(dtype)
    return out


@pytest.mark.parametrize("dtype", FLOAT8, ids=str)
@SETTINGS
@given(data=st.data())
def test_float8_loads_and_stores_under_drawn_configs(dtype, data):
    x = data.draw(tt.tensors(tt.shapes(2, max_side=40))).mul(50).to(dtype)
    config = data.draw(tt.configs(scale_and_quantize, x, 3.0, dtype))
    tt.assert_matches(scale_and_quantize, lambda x, s, d: (x.float() * s).to(d), x, 3.0, dtype, configs=[config],
                      atol=0, rtol=0)


def compare_and_select(x, y):
    """The float8 math torch does itself: ==, != (a number included), abs, where."""
    same = torch.empty(x.shape, dtype=torch.bool, device=x.device)
    picked = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    for t in tl.tile(x.shape[0]):
        a, b = x[t], y[t]
        same[t] = (a == b) | (a != 0.5) & (a.abs() == b)
        picked[t] = torch.where(a.float() > 0, a, b).abs()
    return same, picked


@pytest.mark.parametrize("dtype", FLOAT8, ids=str)
def test_float8_comparisons_abs_and_where_as_torch(dtype):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(300, generator=g).to(dtype)
    y = torch.where(torch.rand(300, generator=g) > 0.5, x.float().abs(), torch.randn(300, generator=g)).to(dtype)
    tt.assert_matches(compare_and_select, lambda x, y: ((x == y) | (x != 0.5) & (x.abs() == y),
                                                        torch.where(x.float() > 0, x, y).abs()),
                      x, y, configs=2, atol=0, rtol=0)


def fp8_gemm(x, y):
    """Helion's fp8_gemm: float8 operands, a float32 accumulator, a float16 result."""
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=torch.float16, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = tl.dot(x[tm, tk], y[tk, tn], acc=acc)
        out[tm, tn] = acc.to(torch.float16)
    return out


def fp8_dot_out(x, y, out_dtype: torch.dtype):
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=out_dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        out[tm, tn] = tl.dot(x[tm, :], y[:, tn], out_dtype=out_dtype)
    return out


def float8_matrices(draw, dtype, m, k, n):
    x = draw(tt.tensors((m, k))).mul(0.5).to(dtype)
    y = draw(tt.tensors((k, n))).mul(0.5).to(dtype)
    return x, y


@pytest.mark.parametrize("dtype", FLOAT8, ids=str)
@SETTINGS
@given(data=st.data())
def test_float8_gemm_accumulates_in_float32(dtype, data):
    m, k, n = (data.draw(tt.sizes(1, 48)) for _ in range(3))
    x, y = float8_matrices(data.draw, dtype, m, k, n)
    config = data.draw(tt.configs(fp8_gemm, x, y))
    tt.assert_matches(fp8_gemm, lambda x, y: (x.float() @ y.float()).half(), x, y, configs=[config])


@pytest.mark.parametrize("out_dtype", [torch.float32, torch.bfloat16, torch.float8_e4m3fn], ids=str)
def test_float8_dot_out_dtype(out_dtype):
    x, y = (torch.randn(s, generator=torch.Generator().manual_seed(i)).to(torch.float8_e5m2)
            for i, s in enumerate([(20, 32), (32, 24)]))
    tt.assert_matches(fp8_dot_out, lambda x, y, d: (x.float() @ y.float()).to(d), x, y, out_dtype, configs=2,
                      atol=0 if out_dtype == torch.float8_e4m3fn else None, rtol=0.13 if out_dtype.itemsize == 1 else None)


def test_float8_casts_compile_for_hopper_with_the_hardware_conversions_torch_agrees_with():
    """sm_90 converts float8 -> float32 and float32 -> e4m3fn (satfinite: torch's rule) in hardware; float32 ->
    e5m2 keeps the bit code, since the hardware's saturates where torch goes to infinity."""
    x32 = torch.randn(1000)
    to_e4m3 = compile_for_gpu(cast, x32, torch.float8_e4m3fn).asm["ptx"]
    assert "cvt.rn.satfinite.e4m3x2.f32" in to_e4m3
    to_e5m2 = compile_for_gpu(cast, x32, torch.float8_e5m2).asm["ptx"]
    assert "e5m2x2.f32" not in to_e5m2 and ".target sm_90" in to_e5m2
    from_e5m2 = compile_for_gpu(cast, x32.to(torch.float8_e5m2), torch.float32).asm["ptx"]
    assert "cvt.rn.f16x2.e5m2x2" in from_e5m2


@pytest.mark.parametrize("dtype, kind", [(torch.float8_e4m3fn, "e4m3"), (torch.float8_e5m2, "e5m2")])
def test_float8_gemm_compiles_to_float8_wgmma_on_hopper(dtype, kind):
    x, y = torch.randn(64, 64).to(dtype), torch.randn(64, 64).to(dtype)
    ptx = compile_for_gpu(fp8_gemm, x, y, config=tfn.Config(block_sizes=[64, 64, 64])).asm["ptx"]
    assert re.search(rf"wgmma\.mma_async\S*\.f32\.{kind}\.{kind}", ptx)


def test_float8_dot_with_k_under_32_multiplies_float16_on_hopper():
    """Triton's float8 dot needs k >= 32; float16 holds every float8 value, so the product is the same."""
    x, y = torch.randn(64, 64).to(torch.float8_e4m3fn), torch.randn(64, 64).to(torch.float8_e4m3fn)
    compiled = compile_for_gpu(fp8_gemm, x, y, config=tfn.Config(block_sizes=[64, 64, 16]))
    assert re.search(r"wgmma\.mma_async\S*\.f32\.f16\.f16", compiled.asm["ptx"])


def double_it(x):
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * 2
    return out


def mixed_dot(x, y):
    out = torch.empty([x.shape[0], y.shape[1]], dtype=torch.float32, device=x.device)
    for t in tl.tile(x.shape[0]):
        out[t, :] = tl.dot(x[t, :], y)
    return out


def test_float8_math_torch_refuses_is_refused_with_a_hint():
    x = torch.randn(16).to(torch.float8_e4m3fn)
    with pytest.raises(NotImplementedError):
        x * 2  # torch's own refusal
    with pytest.raises(TracingError, match=r"test_float8.py:\d+: mul: .*cast them with .to\(torch.float32\) first"):
        tfn.jit(double_it)(x)


def test_a_dot_of_two_float8_kinds_is_refused():
    x, y = torch.randn(16, 16).to(torch.float8_e4m3fn), torch.randn(16, 16).to(torch.float8_e5m2)
    with pytest.raises(TracingError, match=r"float8_e4m3fn and torch.float8_e5m2: torch does not promote"):
        tfn.jit(mixed_dot)(x, y)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dst", FLOAT8, ids=str)
@pytest.mark.parametrize("src", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_casts_to_float8_on_gpu_agree_with_torch_on_gpu(src, dst):
    x = edge_values().to(src).cuda()
    assert same_values(tfn.jit(cast)(x, dst).cpu(), x.to(dst).cpu())
    back = x.to(dst)
    assert same_values(tfn.jit(cast)(back, torch.float32).cpu(), back.float().cpu())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", FLOAT8, ids=str)
@pytest.mark.parametrize("blocks", [[64, 64, 64], [64, 64, 16], [16, 16, 32]])
def test_float8_gemm_on_gpu(dtype, blocks):
    g = torch.Generator().manual_seed(1)
    x, y = (torch.randn(s, generator=g).mul(0.5).to(dtype).cuda() for s in [(200, 256), (256, 136)])
    got = tfn.jit(fp8_gemm, config=tfn.Config(block_sizes=blocks))(x, y)
    torch.testing.assert_close(got.float(), (x.float() @ y.float()).half().float(), atol=2e-2, rtol=1e-2)
