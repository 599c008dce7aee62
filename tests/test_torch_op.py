"""Kernels as torch citizens: inside torch.compile (three backends, no graph break, no recompile),
`torch.library.opcheck` on their ops, autograd through `def_vjp`, and a clear error without one."""
from __future__ import annotations

import pytest
import torch
import torch._dynamo
import torch._dynamo.testing

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ArgumentError
from tilefn.torch_op import MissingBackward, op_of

BACKENDS = ["eager", "aot_eager", "inductor"]


@tfn.jit
def scale_add(x, y, alpha: float = 2.0):
    out = torch.empty_like(x)
    for t in tl.tile(x.size()):
        out[t] = x[t] * alpha + y[t]
    return out


@tfn.jit
def add_into(x, out):
    for t in tl.tile(x.size()):
        out[t] = out[t] + x[t]
    return out


@tfn.jit
def sum_and_max(x):
    m, _ = x.size()
    total = torch.empty([m], device=x.device)
    top = torch.empty([m], device=x.device)
    for tm in tl.tile(m):
        row = x[tm, :]
        total[tm] = row.sum(-1)
        top[tm] = row.amax(-1)
    return total, top


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_function_calling_kernels_compiles_whole(backend):
    def f(x, y):
        total, top = sum_and_max(torch.relu(x))
        return scale_add(x, y).sum(-1) + total * top

    x, y = torch.randn(6, 24), torch.randn(6, 24)
    compiled = torch.compile(f, fullgraph=True, backend=backend)
    for _ in range(2):
        torch.testing.assert_close(compiled(x, y), (x * 2 + y).sum(-1) + x.relu().sum(-1) * x.relu().amax(-1))


def test_no_recompile_per_call_and_one_graph():
    counter = torch._dynamo.testing.CompileCounter()
    compiled = torch.compile(lambda x, y: scale_add(x, y, 0.5) * 3, fullgraph=True, backend=counter)
    for seed in range(4):
        torch.manual_seed(seed)
        x, y = torch.randn(40), torch.randn(40)
        torch.testing.assert_close(compiled(x, y), (x * 0.5 + y) * 3)
    assert counter.frame_count == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_kernel_writing_its_argument_mutates_it_under_compile(backend):
    x, out = torch.randn(33), torch.randn(33)
    expected = out + x
    compiled = torch.compile(lambda x, out: add_into(x, out) * 1, fullgraph=True, backend=backend)
    torch.testing.assert_close(compiled(x, out), expected)
    torch.testing.assert_close(out, expected)


def test_a_tuned_kernel_compiles_too():
    tuned = tfn.tune(scale_add, effort="none", verbose=False)
    x, y = torch.randn(20), torch.randn(20)
    compiled = torch.compile(lambda x, y: tuned(x, y) + 1, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, y), x * 2 + y + 1)


@pytest.mark.parametrize("kernel, args", [
    (scale_add, (torch.randn(10), torch.randn(10))),
    (sum_and_max, (torch.randn(4, 16),)),
    (add_into, (torch.randn(10), torch.randn(10))),
])
def test_opcheck_passes(kernel, args):
    op, tensors = op_of(kernel, *args)
    torch.library.opcheck(op, tensors)


@pytest.mark.parametrize("dynamic", [None, True])
def test_new_shapes_under_dynamic_compilation_specialise(dynamic):
    """Dynamo's dynamic shapes reach a kernel as sizes it specialises on (tilefn compiles per shape)."""
    compiled = torch.compile(lambda x, y: scale_add(x, y) - 1, backend="aot_eager", dynamic=dynamic)
    for n in (8, 9, 10):
        x, y = torch.randn(n, 3), torch.randn(n, 3)
        torch.testing.assert_close(compiled(x, y), x * 2 + y - 1)


# --- autograd ---------------------------------------------------------------------------------
@tfn.jit
def mul(x, w):
    out = torch.empty_like(x)
    for t in tl.tile(x.size()):
        out[t] = x[t] * w[t]
    return out


@mul.def_vjp
def _mul_backward(residuals, grad):
    (x, w), _ = residuals
    return mul(grad, w), mul(grad, x)


def test_def_vjp_gradients_equal_torch_autograd():
    x = torch.randn(37, requires_grad=True)
    w = torch.nn.Parameter(torch.randn(37))
    out = mul(x, w)
    torch.testing.assert_close(out, x.detach() * w.detach())
    out.sum().backward()
    x2, w2 = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    (x2 * w2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(w.grad, w2.grad)


@tfn.jit
def exp_total(x):
    """One new output (a 0-d host reduction of the kernel's values) whose backward reads the kernel's output."""
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = torch.exp(x[t])
    return torch.sum(out)


@exp_total.def_vjp
def _exp_total_backward(residuals, grad):
    (x,), total = residuals
    return (grad * torch.exp(x),) if total.ndim == 0 else (None,)


def test_def_vjp_with_one_0d_output_saves_it_whole():
    x = torch.randn(13, requires_grad=True)
    total = exp_total(x)
    torch.testing.assert_close(total, torch.exp(x.detach()).sum())
    total.backward()
    torch.testing.assert_close(x.grad, torch.exp(x.detach()))


def test_def_vjp_under_compile_with_aot_autograd():
    x, w = torch.randn(16, requires_grad=True), torch.randn(16, requires_grad=True)
    compiled = torch.compile(lambda x, w: mul(x, w).sin().sum(), fullgraph=True, backend="aot_eager")
    compiled(x, w).backward()
    torch.testing.assert_close(x.grad, w.detach() * torch.cos(x.detach() * w.detach()))


def test_without_a_backward_outputs_come_back_and_backward_says_how_to_add_one():
    w = torch.nn.Parameter(torch.randn(12))
    y = torch.randn(12)
    out = scale_add(w, y)
    torch.testing.assert_close(out, w.detach() * 2 + y)  # inference with parameters works
    with pytest.raises(MissingBackward, match=r"scale_add\(\), which has no backward.*def_vjp"):
        out.sum().backward()
    with torch.no_grad():
        torch.testing.assert_close(scale_add(w, y), w.detach() * 2 + y)


def test_the_fast_path_never_serves_a_call_that_needs_grad():
    w = torch.nn.Parameter(torch.randn(12))
    y = torch.randn(12)
    with torch.no_grad():
        scale_add(w, y)
    assert scale_add(w, y).grad_fn is not None  # the same arguments, now recorded by autograd


def test_autograd_through_a_kernel_writing_its_argument_is_refused():
    with pytest.raises(ArgumentError, match="writes its argument `out`"):
        add_into(torch.randn(5, requires_grad=True), torch.randn(5))


def test_a_helion_kernel_compiles_whole():
    import tilefn.helion as helion
    import tilefn.helion.language as hl

    @helion.kernel(config=helion.Config(block_sizes=[8]))
    def double(x):
        out = torch.empty_like(x)
        for t in hl.tile(x.size()):
            out[t] = x[t] * 2
        return out

    x = torch.randn(20)
    compiled = torch.compile(lambda x: double(x) + 1, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), x * 2 + 1)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_a_float_argument_is_an_op_input_not_a_new_op_per_value(backend):
    x, y = torch.randn(5, 12), torch.randn(5, 12)
    compiled = torch.compile(lambda a, b, alpha: scale_add(a, b, alpha), backend=backend)
    for alpha in (0.5, 1.5, -3.0):
        torch.testing.assert_close(compiled(x, y, alpha), x * alpha + y)
    op, args = op_of(scale_add, x, y, 0.5)
    assert "float alpha" in str(op._schema) and args[2] == 0.5
    assert op_of(scale_add, x, y, 7.0)[0] is op  # one op for every value
    torch.library.opcheck(op, args)


def test_a_float_argument_under_autograd_gets_no_gradient():
    @tfn.jit
    def scaled(x, alpha: float):
        out = torch.empty_like(x)
        for t in tl.tile(x.size()):
            out[t] = x[t] * alpha
        return out

    scaled.def_vjp(lambda saved, grad: (grad * saved[0][1], None))
    x = torch.randn(9, requires_grad=True)
    for alpha in (2.0, -0.5):
        x.grad = None
        scaled(x, alpha).sum().backward()
        torch.testing.assert_close(x.grad, torch.full_like(x, alpha))
