"""Derived attention backwards (online softmax made two passes, then transposed) against torch autograd of
eager softmax(q k^T / sqrt(d)) v: compiled (Triton's CPU interpreter) and tfn.interpret under drawn Configs in
float64, gradcheck through tfn.autograd, bfloat16 within its tolerance, sm_90 compiles, the printed IR."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from attention_kernels import CASES, eager_gradients
from tilefn.trace import primitives as p

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
import attention as example  # noqa: E402

SETTINGS = settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@SETTINGS
@given(data=st.data())
def test_gradients_equal_torch_autograd(case, data):
    batch, seq = data.draw(st.integers(1, 2), label="batch"), data.draw(st.integers(1, 40), label="seq")
    dim = data.draw(st.sampled_from([8, 64, 128]), label="dim")
    args = case.inputs(batch, seq, dim)
    cotangent = torch.randn_like(args[0])
    bwd = tfn.vjp(case.kernel)
    config = data.draw(tt.configs(bwd, *args, cotangent), label="config")
    tt.assert_matches(bwd, lambda *a: eager_gradients(case, a[:-1], a[-1]), *args, cotangent, configs=[config])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_gradcheck_through_the_compiled_kernel(case):
    torch.manual_seed(0)
    kernel = tfn.autograd(tfn.jit(case.kernel.fn))
    args = tuple(a.requires_grad_(True) for a in case.inputs(1, 5, 4))
    assert kernel(*args).grad_fn is not None
    torch.autograd.gradcheck(kernel, args, fast_mode=True)


def test_autograd_outputs_backward_like_torch():
    case = CASES[0]
    kernel = tfn.autograd(tfn.jit(case.kernel.fn))
    torch.manual_seed(1)
    args = [a.requires_grad_(True) for a in case.inputs(2, 23, 16)]
    out = kernel(*args)
    g = torch.randn_like(out)
    out.backward(g)
    torch.testing.assert_close(out.detach(), case.reference(*[a.detach() for a in args]))
    for arg, want in zip(args, eager_gradients(case, [a.detach() for a in args], g)):
        torch.testing.assert_close(arg.grad, want)


@pytest.mark.parametrize("dim", [64, 128])
@pytest.mark.parametrize("case", CASES[:2], ids=lambda c: c.name)
def test_bfloat16_gradients_within_bfloat16_tolerance(case, dim):
    torch.manual_seed(0)
    args = case.inputs(1, 48, dim, torch.bfloat16)
    cotangent = torch.randn_like(args[0])
    got = tfn.vjp(case.kernel)(*args, cotangent)
    want = eager_gradients(case, [a.double() for a in args], cotangent.double())
    for g, w in zip(got, want):
        assert g.dtype == torch.bfloat16
        scale = w.abs().max().item()
        torch.testing.assert_close(g.double(), w, atol=3e-2 * scale, rtol=3e-2)


@pytest.mark.parametrize("case", CASES[:2], ids=lambda c: c.name)
def test_the_default_config_at_d128_takes_key_tiles_that_fit_and_matches_autograd(case):
    """At 128 rows and head dim 128 the five products need key tiles of 64 to fit the H200's shared memory
    (tests/lower/test_shared_memory.py compiles it); the gradients under that default are still right."""
    torch.manual_seed(0)
    args = case.inputs(1, 130, 128, torch.bfloat16)
    cotangent = torch.randn_like(args[0])
    bwd = tfn.vjp(case.kernel)
    default = tt.spec_of(bwd, *args, cotangent).default()
    assert tuple(default.block_sizes) == (1, 128, 64) and default.num_stages == 3
    want = eager_gradients(case, [a.double() for a in args], cotangent.double())
    for run in (bwd, tfn.interpret(bwd)):
        for g, w in zip(run(*args, cotangent), want):
            torch.testing.assert_close(g.double(), w, atol=3e-2 * w.abs().max().item(), rtol=3e-2)


def test_example_kernel_gradients_in_float32():
    """examples/attention.py (float32 accumulators, exp2): its backward within float32 tolerances."""
    torch.manual_seed(0)
    q, k, v = example.make_inputs("cpu", torch.float32)
    cotangent = torch.randn_like(q)
    got = tfn.vjp(example.attention)(q, k, v, cotangent)
    leaves = [t.double().requires_grad_(True) for t in (q, k, v)]
    want = torch.autograd.grad(example.reference(*leaves), leaves, cotangent.double())
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double(), w, atol=2e-5, rtol=2e-4)


@pytest.mark.parametrize("case, dim", [(CASES[0], 128), (CASES[1], 64), (CASES[1], 128), (CASES[2], 64)],
                         ids=["attention-d128", "causal-d64", "causal-d128", "batched-d64"])
@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_backward_compiles_for_hopper(case, dim, data):
    dtype = data.draw(st.sampled_from([torch.float32, torch.bfloat16]), label="dtype")
    args = case.inputs(2, 256, dim, dtype)
    bwd = tfn.vjp(case.kernel)
    config = data.draw(tt.configs(bwd, *args, args[0]), label="config")
    assert ".target sm_90" in tt.compile_for_gpu(bwd, *args, args[0], config=config).asm["ptx"]


def _inner_loops(program):
    (grid,) = program.kernel.params["region"].eqns
    return grid, [e for e in grid.params["region"].eqns if e.prim is p.loop_p]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_printed_backward_is_the_max_the_sums_then_their_transpose(case):
    args = case.inputs(1, 20, 16)
    program = tfn.make_ir(tfn.vjp(case.kernel))(*args, args[0])
    grid, (max_loop, sums, transposed) = _inner_loops(program)
    eqns = list(grid.params["region"].eqns)
    (stop,) = [e for e in eqns if e.prim is p.stop_gradient_p]
    assert stop.inputs == max_loop.outputs and eqns.index(max_loop) < eqns.index(stop) < eqns.index(sums)
    assert len(max_loop.outputs) == 1 and len(sums.outputs) == 2  # (the max; l and acc)
    prims = lambda loop: [e.prim for e in loop.params["region"].eqns]  # noqa: E731
    assert p.P["maximum"] in prims(max_loop) and p.P["maximum"] not in prims(sums) + prims(transposed)
    assert prims(sums).count(p.dot_p) == 2 and prims(transposed).count(p.dot_p) == 5  # (FA2's five products)
    atomics = [e.inputs[0] for e in transposed.params["region"].eqns if e.prim is p.P["atomic_add"]]
    assert sorted(program.hints[t].rstrip("3") for t in atomics) == ["grad_k", "grad_v"]
    text = str(program)
    assert text.count(" = stop_gradient ") == 1 and text.count(" = for ") == 3 and "load grad_out" in text


@pytest.mark.parametrize("case", CASES[:2], ids=lambda c: c.name)
def test_partials_are_one_row_per_row_tile_and_q_is_stored(case):
    """`head = bh.begin` of a block-1 tile names that tile: dQ is one program's (a store), dK/dV partials take a row
    per row tile (not per head and row tile), summed after the kernel."""
    torch.manual_seed(0)
    args = case.inputs(2, 37, 16)
    cotangent = torch.randn_like(args[0])
    bwd = tfn.vjp(case.kernel)
    config = tfn.Config(block_sizes=[1, 16, 16], tunables={"vjp_reduction": "partials"})
    text = str(bwd.trace_and_bind((*args, cotangent), {}, config.tunables, config.block_sizes)[0])
    heads_seq_dim = "4, 37, 16"
    assert f"grad_k{'3' if case.rank == 4 else ''}_partials: f64[3, {heads_seq_dim}]" in text  # (cdiv(37, 16) rows)
    assert "atomic_add" not in text and "store grad_q" in text
    tt.assert_matches(bwd, lambda *a: eager_gradients(case, a[:-1], a[-1]), *args, cotangent, configs=[config])
