"""Python float arguments are runtime values: one trace and one compile for every value, torch's dtypes,
host arithmetic at each call, runtime branches, and the escape hatches (static_argnames, tl.specialize)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import TracingError
from tilefn.testing import compile_for_gpu


def rms_scale(x, eps):
    out = torch.empty_like(x)
    m, n = x.shape
    for tm in tl.tile(m):
        row = x[tm, :].to(torch.float32)
        inv = torch.rsqrt((row * row).mean(-1, keepdim=True) + eps)
        out[tm, :] = (row * inv).to(x.dtype)
    return out


def eager_rms_scale(x, eps):
    row = x.float()
    return (row * torch.rsqrt((row * row).mean(-1, keepdim=True) + eps)).to(x.dtype)


def test_a_float_changed_ten_times_traces_and_compiles_once():
    kernel, x = tfn.jit(rms_scale), torch.randn(12, 40)
    for eps in [1e-6 * 10 ** i for i in range(10)]:
        want = eager_rms_scale(x, eps)
        torch.testing.assert_close(kernel(x, eps), want)
        torch.testing.assert_close(tfn.interpret(kernel)(x, eps), want)
    assert kernel.cache_info()[:2] == (1, 1)


def test_a_new_float_value_takes_the_fast_path(monkeypatch):
    kernel, x = tfn.jit(rms_scale), torch.randn(6, 16)
    kernel(x, 0.5)
    monkeypatch.setattr(kernel, "run", lambda *args: pytest.fail("left the fast path"))
    torch.testing.assert_close(kernel(x, 3.0), eager_rms_scale(x, 3.0))  # (no run(): the guard's call)
    assert kernel.cache_info().compiles == 1


def test_static_argnames_compiles_once_per_value():
    kernel, x = tfn.jit(rms_scale, static_argnames=("eps",)), torch.randn(6, 16)
    for eps in (0.5, 2.0, 0.5, 2.0, 4.0):
        torch.testing.assert_close(kernel(x, eps), eager_rms_scale(x, eps))
    assert kernel.cache_info()[:2] == (3, 3)
    assert "0.5" in kernel.lower(x, 0.5).source  # compiled in


def test_static_argnames_names_parameters():
    with pytest.raises(tfn.errors.ArgumentError, match="static_argnames"):
        tfn.jit(rms_scale, static_argnames=("epsilon",))


def scaled(x, alpha):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * alpha + alpha
    return out


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_a_float_keeps_the_tensors_dtype_as_torch(dtype):
    x = (torch.randn(50) * 8).to(dtype)
    want = x * 0.1 + 0.1
    got = tfn.jit(scaled)(x, 0.1)
    assert got.dtype == want.dtype == dtype
    atol, rtol = tt.TOLERANCES[dtype]
    torch.testing.assert_close(got, want, atol=atol, rtol=rtol)
    torch.testing.assert_close(tfn.interpret(scaled)(x, 0.1), want)
    if dtype == torch.float64:  # the value is a double, not rounded to float32
        assert torch.equal(got, want)


def int_times_float(x, alpha):
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * alpha
    return out


def test_an_integer_tensor_times_a_float_is_float32_as_torch():
    x = torch.arange(-20, 20, dtype=torch.int32)
    torch.testing.assert_close(tfn.jit(int_times_float)(x, 0.3), x * 0.3)
    assert str(tfn.make_ir(int_times_float)(x, 0.3)).count("f32[t] = mul") == 1


def host_arithmetic(x, beta, temperature):
    one_minus, inv_t = 1 - beta, 1.0 / temperature
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = (x[t] * inv_t) * one_minus + beta * -temperature
    return out


def test_host_arithmetic_on_floats_runs_at_each_call():
    kernel, x = tfn.jit(host_arithmetic), torch.randn(30)
    for beta, temperature in [(0.25, 2.0), (0.75, 0.5), (0.0, 3.0)]:
        want = (x * (1.0 / temperature)) * (1 - beta) + beta * -temperature
        torch.testing.assert_close(kernel(x, beta, temperature), want)
        torch.testing.assert_close(tfn.interpret(host_arithmetic)(x, beta, temperature), want)
    assert kernel.cache_info()[:2] == (1, 1)
    assert "(1 - beta)" in str(tfn.make_ir(kernel)(x, 0.5, 1.0))


def branch_on_beta(x, beta):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        v = x[t]
        if beta == 0.0:  # a runtime branch (as Helion's jsd_kernel)
            y = v.exp()
        else:
            y = v * beta
        out[t] = y
    return out


def test_an_if_on_a_float_in_a_tile_loop_is_decided_at_each_call():
    kernel, x = tfn.jit(branch_on_beta), torch.randn(40)
    for beta in (0.0, 0.5, 0.0, -2.0):
        want = x.exp() if beta == 0.0 else x * beta
        torch.testing.assert_close(kernel(x, beta), want)
        torch.testing.assert_close(tfn.interpret(branch_on_beta)(x, beta), want)
    assert kernel.cache_info().compiles == 1


def host_if(x, eps):
    out = torch.empty_like(x)
    if eps > 0:
        for t in tl.tile(x.shape[0]):
            out[t] = x[t] + eps
    return out


def host_range(x, steps):
    out = torch.zeros_like(x)
    for t in tl.tile(x.shape[0]):
        for _ in range(int(steps)):
            out[t] = out[t] + x[t]
    return out


def host_math(x, eps):
    out = torch.empty_like(x)
    root = math.sqrt(eps)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * root
    return out


@pytest.mark.parametrize("kernel, line", [(host_if, "if eps > 0:"), (host_range, "for _ in range(int(steps)):"),
                                          (host_math, "root = math.sqrt(eps)")])
def test_a_float_used_as_a_number_on_the_host_names_the_line_and_the_escape_hatches(kernel, line):
    with pytest.raises(TracingError, match="static_argnames") as info:
        tfn.jit(kernel)(torch.randn(8), 2.0)
    assert "tl.specialize" in str(info.value) and line in str(info.value)


def specialized(x, eps):
    eps = tl.specialize(eps)
    out = torch.empty_like(x)
    root = math.sqrt(eps) if eps > 0 else 0.0
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * root
    return out


def test_tl_specialize_makes_a_float_static():
    kernel, x = tfn.jit(specialized), torch.randn(16)
    for eps in (4.0, 0.25, 4.0, -1.0):
        want = x * (math.sqrt(eps) if eps > 0 else 0.0)
        torch.testing.assert_close(kernel(x, eps), want)
        torch.testing.assert_close(tfn.interpret(specialized)(x, eps), want)
    assert kernel.cache_info()[:2] == (3, 3)
    assert kernel.static == (1,)


def number_ops(x, low, high, fill, p):
    out = torch.empty_like(x)
    other = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        v = torch.clamp(x[t], min=low, max=high)
        v = torch.where(v > fill, v, fill)
        v = v.masked_fill(v == high, fill) + torch.full_like(v, 0.0).lerp(v, p)
        out[t] = v + x[t] ** p
        other[t] = fill
    return out, other


def eager_number_ops(x, low, high, fill, p):
    v = torch.where(x.clamp(low, high) > fill, x.clamp(low, high), torch.tensor(fill, dtype=x.dtype))
    v = v.masked_fill(v == high, fill) + torch.zeros_like(v).lerp(v, p)
    return v + x ** p, torch.full_like(x, fill)


@settings(max_examples=6, deadline=None)
@given(st.data())
def test_floats_in_clamp_where_masked_fill_lerp_pow_and_stores_match_eager(data):
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0] * 3)
    numbers = (data.draw(st.sampled_from([-1.5, -0.25])), data.draw(st.sampled_from([0.75, 2.5])),
               data.draw(st.sampled_from([0.1, -0.3])), data.draw(st.sampled_from([2.0, 3.0, 0.5, 0.0, -1.0])))
    config = data.draw(tt.configs(number_ops, x, *numbers))
    tt.assert_matches(number_ops, eager_number_ops, x, *numbers, configs=[config])


def dropped(x, p):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = F.dropout(x[t], p)
    return out


def test_dropout_with_a_runtime_probability():
    kernel, x = tfn.jit(dropped), torch.randn(200) + 5
    for p in (0.0, 0.3, 0.8, 1.0):
        torch.manual_seed(1)
        got = kernel(x, p)
        torch.manual_seed(1)
        torch.testing.assert_close(got, tfn.interpret(dropped)(x, p))
        kept = got != 0
        torch.testing.assert_close(got[kept], x[kept] / (1 - p)) if p < 1 else None
        assert kept.all() if p == 0 else (not kept.any() if p == 1 else 0 < kept.sum() < 200)
    assert kernel.cache_info().compiles == 1
    with pytest.raises(ValueError, match="between 0 and 1"):
        kernel(x, 1.5)


def test_a_returned_float_is_refused():
    def give_back(x, eps):
        for t in tl.tile(x.shape[0]):
            x[t] = x[t] * eps
        return eps * 2

    with pytest.raises(TracingError, match="returns a runtime float"):
        tfn.jit(give_back)(torch.randn(4), 1.0)


def test_a_float_argument_compiles_for_hopper_as_a_double():
    compiled = compile_for_gpu(host_arithmetic, torch.randn(64), 0.5, 2.0)
    assert ".param .f64" in compiled.asm["ptx"]
    compiled = compile_for_gpu(branch_on_beta, torch.randn(64, dtype=torch.float16), 0.5)
    assert ".param .f64" in compiled.asm["ptx"]
