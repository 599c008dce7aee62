"""tfn.autograd / tfn.jit(autograd=True): kernels whose outputs carry a grad_fn, checked with float64
gradcheck through the compiled kernel (Triton's CPU interpreter); tfn.tune of a derived backward."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from vjp_kernels import CASES, eager_gradients

F64 = torch.float64
GRADCHECKED = ["pointwise_chain", "geglu", "swiglu", "softmax", "log_softmax", "rms_norm", "layer_norm",
               "cross_entropy", "embedding", "matmul", "bmm"]


def _small_inputs(case):
    torch.manual_seed(0)
    return case.inputs(lambda low, high: min(high, max(low, 3)), F64)


@pytest.mark.parametrize("name", GRADCHECKED)
def test_gradcheck_through_the_compiled_kernel(name):
    case = next(c for c in CASES if c.name == name)
    kernel = tfn.autograd(tfn.jit(case.kernel.fn))
    args = [a.requires_grad_(True) if i in case.differentiable else a for i, a in enumerate(_small_inputs(case))]
    out = kernel(*args)
    assert out.grad_fn is not None
    torch.autograd.gradcheck(kernel, tuple(args), fast_mode=True)


def test_backward_equals_eager_autograd_on_the_same_inputs():
    case = next(c for c in CASES if c.name == "layer_norm")
    kernel = tfn.autograd(tfn.jit(case.kernel.fn))
    args = [a.requires_grad_(True) for a in _small_inputs(case)]
    g = torch.randn(args[0].shape, dtype=F64)
    kernel(*args).backward(g)
    for arg, want in zip(args, eager_gradients(case, [a.detach() for a in args], g)):
        torch.testing.assert_close(arg.grad, want)


@tfn.jit(autograd=True)
def gated(x, y):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape):
        out[t] = torch.tanh(x[t]) * y[t]
    return out


def test_jit_with_autograd_registers_the_derived_backward():
    x, y = torch.randn(4, 5, dtype=F64, requires_grad=True), torch.randn(4, 5, dtype=F64)
    (gated(x, y) * 3).sum().backward()
    torch.testing.assert_close(x.grad, 3 * (1 - torch.tanh(x.detach()) ** 2) * y)
    assert gated.derived_vjp.__name__ == "gated_vjp"
    with torch.no_grad():
        torch.testing.assert_close(gated(x, y), torch.tanh(x) * y)  # (the forward itself is unchanged)


def test_cotangents_follow_the_primals_positionally_or_by_name():
    case = next(c for c in CASES if c.name == "rms_norm")
    x, w = _small_inputs(case)
    g = torch.randn_like(x)
    bwd = tfn.vjp(case.kernel)
    want = bwd(x, w, g)  # (eps keeps its default)
    for got in (bwd(x, w, 1e-6, g), bwd(x, w, grad_output=g), bwd(x, w, eps=1e-6, grad_output=g)):
        torch.testing.assert_close(got, want)


def test_tune_searches_the_backward_like_any_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path))
    case = next(c for c in CASES if c.name == "rms_norm")
    x, w = case.inputs(lambda low, high: high, torch.float32)
    g = torch.randn_like(x)
    small, large = tfn.Config(block_sizes=[2]), tfn.Config(block_sizes=[8])
    tuned = tfn.tune(tfn.vjp(case.kernel), configs=[small, large], use_cache=False, verbose=False)
    got = tuned(x, w, g)
    assert tuned.known_config(x, w, g) in (small, large)
    want = eager_gradients(case, [x, w], g)
    torch.testing.assert_close(got[0], want[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got[1], want[1], atol=1e-4, rtol=1e-4)


def test_the_derived_backward_runs_inside_torch_compile():
    def loss(x, y):
        return (gated(x, y) * 2).sum()

    x, y = torch.randn(4, 5, dtype=F64, requires_grad=True), torch.randn(4, 5, dtype=F64)
    torch.compile(loss, backend="aot_eager", fullgraph=True)(x, y).backward()
    torch.testing.assert_close(x.grad, 2 * (1 - torch.tanh(x.detach()) ** 2) * y)


def test_a_runtime_float_argument_takes_no_gradient_and_no_recompile():
    """rms_norm's eps is a runtime float: two values, one backward compile, gradients as torch's."""
    from vjp_kernels import rms_norm

    kernel = tfn.jit(rms_norm)
    backward, trained = tfn.vjp(kernel), tfn.autograd(tfn.jit(rms_norm))
    for eps in (1e-6, 0.25):
        x = torch.randn(6, 8, dtype=F64, requires_grad=True)
        w = torch.randn(8, dtype=F64, requires_grad=True)
        g = torch.randn(6, 8, dtype=F64)
        torch.nn.functional.rms_norm(x, [8], w, eps).backward(g)
        grads = backward(x.detach(), w.detach(), eps, g)
        torch.testing.assert_close(grads[0], x.grad)
        torch.testing.assert_close(grads[1], w.grad)
        xt, wt = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
        trained(xt, wt, eps).backward(g)
        torch.testing.assert_close((xt.grad, wt.grad), (x.grad, w.grad))
    assert backward.cache_info().compiles == 1
