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
    config = tfn.Config(block_sizes=[8], tunables=PARTIALS)
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
