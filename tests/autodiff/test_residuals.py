"""tfn.vjp_split: the forward stores its backward's per-row residuals, the backward loads them. Gradients
against float64 torch autograd and the recompute path (tfn.vjp), compiled and under tfn.interpret; the
backward from residuals reduces no primal-only row; kernels with nothing to save are not split."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import tilefn as tfn
from tilefn.autodiff.residuals import find_residuals
from tilefn.trace import primitives as p
from tilefn.trace.ir import walk_eqns
import tilefn.testing as tt
from vjp_kernels import matmul_tanh, pointwise_chain

EXAMPLES = Path(__file__).parents[2] / "examples"
ROWS, COLS = 37, 50  # (ragged: no block size divides the rows)


def example(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs(name: str) -> tuple:
    torch.manual_seed(0)
    x = torch.randn(ROWS, COLS)
    if name == "cross_entropy":
        return x, torch.randint(0, COLS, (ROWS,))
    if name == "layer_norm":
        return x, torch.randn(COLS), torch.randn(COLS)
    if name == "rms_norm":
        return x, torch.randn(COLS)
    return (x,)


def _eager(name: str, *args):
    """The kernels' definitions in eager torch (float64 when given float64)."""
    if name == "cross_entropy":
        return F.cross_entropy(args[0], args[1])
    if name == "layer_norm":
        return F.layer_norm(args[0], [COLS], args[1], args[2], 1e-5)
    if name == "rms_norm":
        return F.rms_norm(args[0], [COLS], args[1], 1e-5)
    return torch.softmax(args[0], dim=1)


CASES = [("cross_entropy", "cross_entropy", 2), ("softmax", "softmax", 2), ("softmax", "softmax_decomposed", 2),
         ("layer_norm", "layer_norm", 2), ("rms_norm", "rms_norm", 1)]  # (module, kernel, residuals)


def _case(module: str, kernel: str):
    args = _inputs(module)
    return getattr(example(module), kernel), args, [i for i, a in enumerate(args) if a.is_floating_point()]


def _autograd(module, args, floating, cotangent) -> list:
    leaves = [a.double().requires_grad_(True) if i in floating else a for i, a in enumerate(args)]
    return list(torch.autograd.grad(_eager(module, *leaves), [leaves[i] for i in floating], cotangent.double()))


@pytest.mark.parametrize("module,name,count", CASES, ids=[c[1] for c in CASES])
@pytest.mark.parametrize("run", ["compiled", "interpret"])
def test_gradients_equal_autograd_and_recompute(module, name, count, run):
    kernel, args, floating = _case(module, name)
    fwd, bwd = tfn.vjp_split(kernel)
    fwd, bwd = (fwd, bwd) if run == "compiled" else (tfn.interpret(fwd), tfn.interpret(bwd))
    out, residuals = fwd(*args)
    assert len(residuals) == count and all(r.shape == (ROWS,) for r in residuals)
    torch.testing.assert_close(out, kernel(*args))
    cotangent = torch.randn_like(out)
    got = bwd(*args, residuals, cotangent)
    recompute = tfn.vjp(kernel)(*args, cotangent)
    for i, want in zip(floating, _autograd(module, args, floating, cotangent)):
        torch.testing.assert_close(got[i].double(), want, atol=2e-5, rtol=2e-4)
        torch.testing.assert_close(got[i], recompute[i], atol=1e-6, rtol=1e-5)


def _primal_row_reductions(program) -> list:
    """The backward kernel's reductions over a row (axis 1) of values no cotangent reaches."""
    tainted = set(program.inputs[len(program.inputs) - 1:])  # (the one cotangent input)
    for eqn in program.eqns:
        if eqn.prim is p.host_p and any(x in tainted for x in eqn.inputs):
            tainted |= set(eqn.outputs)
    found = []
    for eqn in walk_eqns(program.kernel.params["region"].eqns):
        if any(x in tainted for x in eqn.inputs):
            tainted |= set(eqn.outputs)
        elif eqn.prim.name.startswith("reduce_") and eqn.params.get("axis") == 1:
            found.append(eqn)
    return found


@pytest.mark.parametrize("module,name,count", CASES, ids=[c[1] for c in CASES])
def test_backward_from_residuals_reduces_no_primal_row(module, name, count):
    kernel, args, _ = _case(module, name)
    fwd, bwd = tfn.vjp_split(kernel)
    out, residuals = fwd(*args)
    cotangent = torch.randn_like(out)
    recompute = _primal_row_reductions(tfn.vjp(kernel).lower(*args, cotangent).program)
    split = _primal_row_reductions(bwd.lower(*args, residuals, cotangent).program)
    # (the hand-written amax's transpose counts the row's ties to its max: a reduction of the transpose's own,
    # which the forward never computed; every reduction the forward made is gone)
    ties = 1 if name == "softmax_decomposed" else 0
    assert len(recompute) >= count + ties and len(split) == ties


def test_forward_stores_each_residual_once():
    kernel, args, _ = _case("layer_norm", "layer_norm")
    program = tfn.vjp_split(kernel)[0].lower(*args).program
    saved = program.outputs[1]
    stores = [e for e in walk_eqns(program.kernel.params["region"].eqns) if e.prim is p.store_p]
    assert len(saved) == 2 and sorted(sum(e.inputs[0] is s for e in stores) for s in saved) == [1, 1]


def test_nothing_to_save_is_not_split():
    x, y = torch.randn(20, 30), torch.randn(20, 30)
    assert find_residuals(tfn.make_ir(pointwise_chain)(x, y)) == ()
    fwd, bwd = tfn.vjp_split(pointwise_chain)
    out, residuals = fwd(x, y)
    assert residuals == ()
    cotangent = torch.randn_like(out)
    got, want = bwd(x, y, residuals, cotangent), tfn.vjp(pointwise_chain)(x, y, cotangent)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_a_matmul_epilogue_saves_its_activation_and_the_backward_does_not_multiply_again():
    torch.manual_seed(0)
    x, y = torch.randn(20, 40, dtype=torch.float64), torch.randn(40, 12, dtype=torch.float64)
    fwd, bwd = tfn.vjp_split(matmul_tanh)
    out, residuals = fwd(x, y)
    assert [r.shape for r in residuals] == [(20, 12)]
    cotangent = torch.randn_like(out)
    program = bwd.lower(x, y, residuals, cotangent).program
    assert sum(e.prim is p.dot_p for e in walk_eqns(program.kernel.params["region"].eqns)) == 2  # (g @ y^T, x^T @ g)
    x2, y2 = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    want = torch.autograd.grad(torch.tanh(x2 @ y2), [x2, y2], cotangent)
    for got, w in zip(bwd(x, y, residuals, cotangent), want):
        torch.testing.assert_close(got, w)


@pytest.mark.parametrize("module,name", [("cross_entropy", "cross_entropy"), ("layer_norm", "layer_norm")])
def test_both_halves_compile_for_hopper(module, name):
    kernel, args, floating = _case(module, name)
    args = [a.to(torch.bfloat16) if i in floating else a for i, a in enumerate(args)]
    fwd, bwd = tfn.vjp_split(kernel)
    out, residuals = fwd(*args)
    assert ".target sm_90" in tt.compile_for_gpu(fwd, *args).asm["ptx"]
    assert ".target sm_90" in tt.compile_for_gpu(bwd, *args, residuals, torch.randn_like(out)).asm["ptx"]


def test_online_softmax_loops_and_symbolic_extents_are_not_split():
    kernel, args, _ = _case("softmax", "softmax_two_pass")
    assert find_residuals(tfn.make_ir(kernel)(*args)) == ()
    kernel, args, _ = _case("layer_norm", "layer_norm")
    dynamic = tfn.jit(kernel.fn, static_shapes=False)
    assert find_residuals(tfn.make_ir(dynamic)(*args)) == ()
    out, residuals = tfn.vjp_split(dynamic)[0](*args)
    assert residuals == ()
    torch.testing.assert_close(out, kernel(*args))


@pytest.mark.parametrize("module,name,knobs", [
    ("cross_entropy", "cross_entropy", {}),
    ("layer_norm", "layer_norm", {}),
    ("layer_norm", "layer_norm", {"vjp_rows_per_program": 8, "vjp_reduction": "partials"})])
def test_forward_and_backward_block_sizes_may_differ(module, name, knobs):
    kernel, args, floating = _case(module, name)
    fwd, bwd = tfn.vjp_split(kernel, config=tfn.Config(block_sizes=[4], tunables=knobs),
                             forward_config=tfn.Config(block_sizes=[16]))
    out, residuals = fwd(*args)
    cotangent = torch.randn_like(out)
    got = bwd(*args, residuals, cotangent)
    for i, want in zip(floating, _autograd(module, args, floating, cotangent)):
        torch.testing.assert_close(got[i].double(), want, atol=2e-5, rtol=2e-4)
    assert _primal_row_reductions(bwd.lower(*args, residuals, cotangent).program) == []


# (cross_entropy's host pullback of its mean does not run under torch.compile's traced backward, as on the
# recompute path: not compiled here)
@pytest.mark.parametrize("module,name,compiled", [("layer_norm", "layer_norm", False),
                                                  ("layer_norm", "layer_norm", True),
                                                  ("cross_entropy", "cross_entropy", False)],
                         ids=["layer_norm", "layer_norm-torch.compile", "cross_entropy"])
def test_autograd_saves_the_residuals_and_backward_loads_them(module, name, compiled):
    kernel, args, floating = _case(module, name)
    kernel = tfn.autograd(tfn.jit(kernel.fn))
    args = [a.double().requires_grad_(True) if i in floating else a for i, a in enumerate(args)]
    step = torch.compile(kernel, backend="aot_eager", fullgraph=True) if compiled else kernel
    out = step(*args)
    assert isinstance(out, torch.Tensor) and out.grad_fn is not None  # (the residuals are not returned)
    cotangent = torch.randn_like(out)
    out.backward(cotangent)
    for i, want in zip(floating, _autograd(module, [a.detach() for a in args], floating, cotangent)):
        torch.testing.assert_close(args[i].grad, want)
    saving, from_residuals = kernel.derived_split
    assert from_residuals.cache_info().traces == 1 and kernel.derived_vjp.cache_info().traces == 0


def test_autograd_without_residuals_recomputes():
    kernel = tfn.autograd(tfn.jit(pointwise_chain.fn))
    x, y = torch.randn(6, 7, dtype=torch.float64, requires_grad=True), torch.randn(6, 7, dtype=torch.float64)
    kernel(x, y).sum().backward()
    x2 = x.detach().requires_grad_(True)
    want, = torch.autograd.grad((torch.tanh(x2) * torch.exp(y) + torch.sigmoid(x2 * y) - x2 / (1.5 + y * y)).sum(), x2)
    torch.testing.assert_close(x.grad, want)
    assert kernel.derived_vjp.cache_info().traces == 1 and kernel.derived_split[1].cache_info().traces == 0


@pytest.mark.parametrize("module,name,count", CASES, ids=[c[1] for c in CASES])
def test_bfloat16_residuals_are_float32_and_give_the_recompute_gradients(module, name, count):
    kernel, args, floating = _case(module, name)
    args = [a.to(torch.bfloat16) if i in floating else a for i, a in enumerate(args)]
    fwd, bwd = tfn.vjp_split(kernel)
    out, residuals = fwd(*args)
    assert [r.dtype for r in residuals] == [torch.float32] * count
    cotangent = torch.randn_like(out)
    got, want = bwd(*args, residuals, cotangent), tfn.vjp(kernel)(*args, cotangent)
    for i in floating:
        assert got[i].dtype == torch.bfloat16
        torch.testing.assert_close(got[i], want[i], atol=1e-2 * want[i].abs().max().item(), rtol=1e-2)


def test_a_tuned_autograd_kernel_runs_itself_and_recomputes():
    kernel, args, floating = _case("rms_norm", "rms_norm")
    kernel = tfn.autograd(tfn.jit(kernel.fn))
    tuned = tfn.tune(kernel, configs=[tfn.Config(block_sizes=[4])], use_cache=False, verbose=False)
    args = [a.double().requires_grad_(True) if i in floating else a for i, a in enumerate(args)]
    out = tuned(*args)
    cotangent = torch.randn_like(out)
    out.backward(cotangent)
    for i, want in zip(floating, _autograd("rms_norm", [a.detach() for a in args], floating, cotangent)):
        torch.testing.assert_close(args[i].grad, want, atol=2e-5, rtol=2e-4)  # (the example's rows are float32)
    assert kernel.derived_vjp.cache_info().traces == 1 and kernel.derived_split[1].cache_info().traces == 0
