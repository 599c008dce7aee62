"""Derived backward kernels against torch autograd: compiled (Triton's CPU interpreter) and tfn.interpret,
under drawn Configs, in float64; each backward also compiles for sm_90."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from vjp_kernels import CASES, eager_gradients

SETTINGS = settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))


def _draw_args(data, case, dtype):
    draw = lambda low, high: data.draw(st.integers(low, high))  # noqa: E731
    return case.inputs(draw, dtype)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@SETTINGS
@given(data=st.data())
def test_gradients_equal_torch_autograd(case, data):
    args = _draw_args(data, case, torch.float64)
    cotangent = torch.randn_like(case.reference(*args))
    bwd = tfn.vjp(case.kernel)
    config = data.draw(tt.configs(bwd, *args, cotangent), label="config")
    tt.assert_matches(bwd, lambda *a: eager_gradients(case, a[:-1], a[-1]), *args, cotangent, configs=[config])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_backward_compiles_for_hopper(case, data):
    dtype = data.draw(st.sampled_from([torch.float32, torch.bfloat16]), label="dtype")
    args = _draw_args(data, case, dtype)
    bwd = tfn.vjp(case.kernel)
    cotangent = torch.randn_like(case.reference(*[a.float() if a.is_floating_point() else a for a in args])).to(dtype)
    config = data.draw(tt.configs(bwd, *args, cotangent), label="config")
    assert ".target sm_90" in tt.compile_for_gpu(bwd, *args, cotangent, config=config).asm["ptx"]


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm", "softmax", "cross_entropy", "swiglu"])
def test_bfloat16_gradients_within_bfloat16_tolerance(name):
    case = next(c for c in CASES if c.name == name)
    torch.manual_seed(0)
    args = case.inputs(lambda low, high: high, torch.bfloat16)
    wide = [a.double() if a.is_floating_point() else a for a in args]
    cotangent = torch.randn_like(case.reference(*wide)).to(torch.bfloat16)
    got = tfn.vjp(case.kernel)(*args, cotangent)
    want = eager_gradients(case, wide, cotangent.double())
    for i in case.differentiable:
        assert got[i].dtype == torch.bfloat16
        scale = want[i].abs().max().item() + 1e-3
        torch.testing.assert_close(got[i].double(), want[i], atol=4e-2 * scale, rtol=4e-2)
