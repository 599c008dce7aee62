"""Loads transpose to stores where each element is read once, to atomic adds where several programs
(or iterations, or lanes through a gather) read it, or (`vjp_reduction="partials"`) to per-program rows
summed on the host."""
from __future__ import annotations

import attrs
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import ConfigError
from tilefn.trace import primitives as p
from tilefn.trace.ir import walk_eqns
from vjp_kernels import CASES, eager_gradients, embedding, layer_norm, matmul, pointwise_chain


def gradient_writes(program) -> dict:
    """The backward kernel's writes: target name -> the primitive writing it."""
    names = {v: n for v, n in program.hints.items()}
    return {names.get(e.inputs[0], "?"): str(e.prim) for e in walk_eqns(program.kernel.params["region"].eqns)
            if e.prim in p.WRITES}


def test_elementwise_inputs_get_plain_stores():
    x = torch.randn(5, 6, dtype=torch.float64)
    program = tfn.make_ir(tfn.vjp(pointwise_chain))(x, x, x)
    assert gradient_writes(program) == {"grad_x": "store", "grad_y": "store"}


def test_a_weight_every_row_tile_reads_gets_atomic_adds_and_the_rows_stores():
    x, w = torch.randn(5, 6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    program = tfn.make_ir(tfn.vjp(layer_norm))(x, w, w, x)
    assert gradient_writes(program) == {"grad_x": "store", "grad_weight": "atomic_add", "grad_bias": "atomic_add"}


def buffer_allocations(program) -> dict:
    """Each gradient buffer's name -> (the allocating function's name, its dtype)."""
    return {program.hints.get(e.outputs[0]): (e.params["fn"].__name__, e.params["kwargs"]["dtype"])
            for e in program.eqns if e.prim is p.host_p and e.params.get("fn") in (torch.zeros, torch.empty)}


def test_a_stored_gradient_takes_the_input_dtype_unfilled_and_an_atomic_one_float32_zeros():
    bf16 = torch.bfloat16
    x, w = torch.randn(5, 6, dtype=bf16), torch.randn(6, dtype=bf16)
    program = tfn.make_ir(tfn.vjp(layer_norm))(x, w, w, x)
    assert buffer_allocations(program) == {"grad_x": ("empty", bf16), "grad_weight": ("zeros", torch.float32),
                                           "grad_bias": ("zeros", torch.float32)}


@tfn.jit
def head_columns(x):
    """Reads only the first 3 columns of x: the rest of its gradient is zero."""
    m, _ = x.shape
    out = torch.empty([m, 3], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        out[tm, :] = torch.exp(x[tm, 0:3])
    return out


@tfn.jit
def inner_rows(x):
    """Tiles over rows 1..m-1 only: row 0's gradient is zero."""
    m, n = x.shape
    out = torch.empty([m - 1, n], dtype=x.dtype, device=x.device)
    for tm in tl.tile(1, m):
        out[tm - 1, :] = torch.sin(x[tm, :])
    return out


@pytest.mark.parametrize("kernel, eager", [(head_columns, lambda x: torch.exp(x[:, :3])),
                                           (inner_rows, lambda x: torch.sin(x[1:]))])
def test_a_stored_gradient_of_a_partly_read_input_is_zero_filled(kernel, eager, monkeypatch):
    real_empty = torch.empty

    def poisoned(*args, **kwargs):  # an unfilled buffer shows up as NaNs in the gradient
        return real_empty(*args, **kwargs).fill_(float("nan"))

    monkeypatch.setattr(torch, "empty", poisoned)
    x = torch.randn(7, 5, dtype=torch.float64)
    grad = torch.randn_like(eager(x))
    program = tfn.make_ir(tfn.vjp(kernel))(x, grad)
    assert buffer_allocations(program)["grad_x"] == ("zeros", torch.float64)
    leaf = x.clone().requires_grad_(True)
    want, = torch.autograd.grad(eager(leaf), leaf, grad)
    for run in (tfn.vjp(kernel), tfn.interpret(tfn.vjp(kernel))):
        got, = run(x, grad)
        torch.testing.assert_close(got, want)


def test_a_gathered_row_is_scattered_back_with_atomic_adds():
    indices, weight = torch.tensor([[0, 2, 2], [1, 0, 2]]), torch.randn(3, 4, dtype=torch.float64)
    program = tfn.make_ir(tfn.vjp(embedding))(indices, weight, torch.randn(2, 3, 4, dtype=torch.float64))
    assert gradient_writes(program) == {"grad_weight": "atomic_add"}
    got = tfn.vjp(embedding)(indices, weight, torch.ones(2, 3, 4, dtype=torch.float64))
    assert got[0] is None
    assert torch.equal(got[1][:, 0], torch.tensor([2.0, 1.0, 3.0], dtype=torch.float64))  # rows read 2, 1, 3 times


def test_lanes_of_a_gather_outside_the_table_scatter_no_gradient():
    """Indices outside the weight's rows read 0 (the load's bounds mask) and so add nothing back: the
    backward's atomic add takes the load's mask, and the gradient is eager index_add_ of the valid lanes."""
    indices = torch.tensor([[0, -1, 2, 2], [5, 0, 3, -4]])
    weight, ct = torch.randn(4, 8, dtype=torch.float64), torch.randn(2, 4, 8, dtype=torch.float64)
    program = tfn.make_ir(tfn.vjp(embedding))(indices, weight, ct)
    atomic, = [e for e in walk_eqns(program.kernel.params["region"].eqns) if e.prim in p.ATOMIC]
    assert atomic.params["masked"] and p.atomic_operands(atomic)[2] is not None
    flat, cts = indices.reshape(-1), ct.reshape(-1, 8)
    valid = (flat >= 0) & (flat < 4)
    want = torch.zeros_like(weight).index_add_(0, flat[valid], cts[valid])
    for run in (tfn.vjp(embedding), tfn.interpret(tfn.vjp(embedding))):
        torch.testing.assert_close(run(indices, weight, ct)[1], want)


def test_operands_of_a_product_reread_by_other_output_tiles_accumulate_atomically():
    x, y = torch.randn(5, 7, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)
    program = tfn.make_ir(tfn.vjp(matmul))(x, y, torch.randn(5, 3, dtype=torch.float64))
    assert gradient_writes(program) == {"grad_x": "atomic_add", "grad_y": "atomic_add"}


PARTIALS = {"vjp_reduction": "partials"}


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm", "matmul", "bmm", "matmul_tanh"])
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_per_program_partials_then_a_host_sum_give_the_same_gradients(name, data):
    case = next(c for c in CASES if c.name == name)
    args = case.inputs(lambda low, high: data.draw(st.integers(low, high)), torch.float64)
    cotangent = torch.randn_like(case.reference(*args))
    bwd = tfn.vjp(case.kernel)
    spec = tt.spec_of(bwd, *args, cotangent)
    assert "vjp_reduction" in {k.index for k in spec.knobs if k.field == "tunables"}
    config = data.draw(tt.configs(bwd, *args, cotangent, spec=spec), label="config")
    config = attrs.evolve(config, tunables=PARTIALS)
    tt.assert_matches(bwd, lambda *a: eager_gradients(case, a[:-1], a[-1]), *args, cotangent, configs=[config])


def test_partials_rows_are_one_per_program_and_summed_after_the_kernel():
    x, w = torch.randn(37, 6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    config = tfn.Config(block_sizes=[8], tunables={**PARTIALS, "vjp_rows_per_program": 8})
    program = tfn.vjp(layer_norm).trace_and_bind((x, w, w, x), {}, config.tunables, config.block_sizes)[0]
    text = str(program)
    assert "grad_weight_partials: f64[5, 6] = torch.zeros([5, 6]" in text  # cdiv(37, 8) programs
    assert "grad_weight: f64[6] = torch.sum(grad_weight_partials, 0)" in text
    assert gradient_writes(program) == {"grad_x": "store", "grad_weight_partials": "store",
                                        "grad_bias_partials": "store"}
    assert text.index("kernel(") < text.index("torch.sum(grad_weight_partials")


def test_the_knob_is_refused_where_no_gradient_is_shared():
    x = torch.randn(5, 6, dtype=torch.float64)
    with pytest.raises(ConfigError, match="does not register this knob"):
        tfn.interpret(tfn.vjp(pointwise_chain), config=tfn.Config(tunables=PARTIALS))(x, x, x)


@pytest.mark.parametrize("name", ["layer_norm", "matmul"])
def test_partials_compile_for_hopper(name):
    case = next(c for c in CASES if c.name == name)
    args = case.inputs(lambda low, high: high, torch.bfloat16)
    cotangent = torch.randn_like(case.reference(*[a.float() for a in args])).to(torch.bfloat16)
    bwd = tfn.vjp(case.kernel)
    config = attrs.evolve(tt.spec_of(bwd, *args, cotangent).default(), tunables=PARTIALS)
    assert ".target sm_90" in tt.compile_for_gpu(bwd, *args, cotangent, config=config).asm["ptx"]
