"""Row chunks: a grid loop whose programs all read one tensor (a weight) is chunked in the backward, each
program walking `vjp_rows_per_program` rows with the weight loaded once and its gradient written once; so
is one that reduces whole rows wider than ROW_CHUNK, of at most LONG_ROW (softmax); the gradients equal torch autograd under any
chunk size, and other kernels are left as they are."""
from __future__ import annotations

import re

import attrs
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.autodiff.chunks import ROWS_KNOB, TARGET_PROGRAMS, chunk_rows
from tilefn.errors import ConfigError
from tilefn.lower.defaults import LONG_ROW, ROW_CHUNK
from tilefn.trace import primitives as p
from tilefn.trace.ir import walk_eqns
from vjp_kernels import (CASES, Case, embedding, eager_gradients, layer_norm, log_softmax, matmul, pointwise_chain,
                         rms_norm, softmax)

F64 = torch.float64


@tfn.jit
def row_linear(x, w, b):
    """Each row tile times a whole weight matrix, plus a bias (a product with a loop-invariant operand)."""
    m, _ = x.shape
    out = torch.empty([m, w.shape[1]], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        out[tm, :] = torch.tanh(x[tm, :] @ w[:, :] + b[None, :])
    return out


LINEAR = Case("row_linear", row_linear, lambda x, w, b: torch.tanh(x @ w + b), None, (0, 1, 2))
NORMS = {"layer_norm": next(c for c in CASES if c.name == "layer_norm"),
         "rms_norm": next(c for c in CASES if c.name == "rms_norm"), "row_linear": LINEAR}


def _inputs(name, m, n, dtype=F64):
    x = torch.randn(m, n, dtype=dtype)
    if name == "row_linear":
        return x, torch.randn(n, 5, dtype=dtype), torch.randn(5, dtype=dtype)
    vectors = 2 if name == "layer_norm" else 1
    return (x, *(torch.randn(n, dtype=dtype) for _ in range(vectors)))


def _check(name, args, tunables, block=None):
    case = NORMS[name]
    cotangent = torch.randn_like(case.reference(*args))
    bwd = tfn.vjp(case.kernel)
    config = tt.spec_of(bwd, *args, cotangent).default()
    config = attrs.evolve(config, tunables=tunables, block_sizes=[block] if block else config.block_sizes)
    tt.assert_matches(bwd, lambda *a: eager_gradients(case, a[:-1], a[-1]), *args, cotangent, configs=[config])


@pytest.mark.parametrize("name", sorted(NORMS))
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_chunked_gradients_equal_torch_autograd_for_any_chunk_size(name, data):
    m, n = data.draw(st.integers(1, 40), label="m"), data.draw(st.integers(1, 24), label="n")
    rows = data.draw(st.sampled_from([1, 2, 3, 5, 8, 16, 64]), label="rows")
    reduction = data.draw(st.sampled_from(["atomic", "partials"]), label="reduction")
    block = data.draw(st.sampled_from([1, 2, 4, 8]), label="block")
    _check(name, _inputs(name, m, n), {ROWS_KNOB: rows, "vjp_reduction": reduction}, block)


@pytest.mark.parametrize("m, rows, block", [(37, 8, 4),    # chunks that do not divide the rows
                                            (1, 4, 1),     # one row
                                            (5, 32, 2),    # fewer rows than one chunk
                                            (12, 3, 2),    # a chunk that is no multiple of the block
                                            (6, 1, 4)])    # a block wider than the chunk
@pytest.mark.parametrize("reduction", ["atomic", "partials"])
def test_chunk_edges(m, rows, block, reduction):
    for name in NORMS:
        _check(name, _inputs(name, m, 7), {ROWS_KNOB: rows, "vjp_reduction": reduction}, block)


def _backward(kernel, *args, **tunables):
    bwd = tfn.vjp(kernel)
    return bwd.trace_and_bind(args, {}, tuple(sorted(tunables.items())), ())[0]


def test_the_grid_walks_chunks_loading_the_weight_once_and_adding_its_gradient_once_per_program():
    x, w = torch.randn(37, 6, dtype=torch.bfloat16), torch.randn(6, dtype=torch.bfloat16)
    g = torch.randn(37, 6, dtype=torch.bfloat16)
    program = _backward(layer_norm, x, w, w, g, **{ROWS_KNOB: 8})
    grid, = program.kernel.params["region"].eqns
    assert grid.params["dims"] == (("grid", None),) and grid.inputs[1].value == 5  # cdiv(37, 8) programs
    top = grid.params["region"].eqns
    loads = [e.inputs[0] for e in top if e.prim is p.load_p]
    inner, = [e for e in top if e.prim is p.loop_p]
    atomics = [program.hints[e.inputs[0]] for e in top if e.prim in p.ATOMIC]
    assert [program.hints[v] for v in loads] == ["weight"] and inner.params["chunk"]
    assert sorted(atomics) == ["grad_bias", "grad_weight"]  # once per program, after the inner loop
    assert len(inner.outputs) == 2 and all(v.type.dtype == torch.float32 for v in inner.outputs)  # f32 carries
    inside = [program.hints.get(e.inputs[0]) for e in walk_eqns(inner.params["region"].eqns) if e.prim in p.WRITES]
    assert inside == ["grad_x"]  # x's gradient: one plain store per row tile, in x's dtype, unfilled
    assert "grad_x: bf16[37, 6] = torch.empty([37, 6]" in str(program)


def test_the_default_chunk_gives_about_target_programs_and_no_fewer_rows_than_the_forward_block():
    x, w = torch.randn(4096, 1024, dtype=torch.bfloat16), torch.randn(1024, dtype=torch.bfloat16)
    program = _backward(rms_norm, x, w, x)
    knob, = [t for t in program.tunables if t.name == ROWS_KNOB]
    assert knob.value == knob.default == 4096 // TARGET_PROGRAMS
    small = _backward(rms_norm, x[:37, :50], w[:50], x[:37, :50])
    knob, = [t for t in small.tunables if t.name == ROWS_KNOB]
    forward_block = tt.spec_of(rms_norm, x[:37, :50], w[:50]).default().block_sizes[0]
    assert knob.value == forward_block and small.kernel.params["region"].eqns[0].inputs[1].value == 1


@tfn.jit
def tile_scaled(x, w):
    """Reads its tile's id: regrouping the rows into chunks would change what it computes."""
    m, _ = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        out[tm, :] = x[tm, :] * w[None, :] * tm.id
    return out


@pytest.mark.parametrize("kernel, args", [
    (tile_scaled, (torch.randn(5, 6, dtype=F64), torch.randn(6, dtype=F64), torch.randn(5, 6, dtype=F64))),
    (softmax, (torch.randn(4, 2 * LONG_ROW, dtype=F64),) * 2),  # rows the heuristics loop over in chunks
    (softmax, (torch.randn(4, ROW_CHUNK, dtype=F64),) * 2),  # rows narrow enough for several programs an SM
    (pointwise_chain, (torch.randn(5, 6, dtype=F64),) * 3),
    (embedding, (torch.tensor([[0, 2], [1, 1]]), torch.randn(3, 4, dtype=F64), torch.randn(2, 2, 4, dtype=F64))),
    (matmul, (torch.randn(5, 7, dtype=F64), torch.randn(7, 3, dtype=F64), torch.randn(5, 3, dtype=F64))),
])
def test_kernels_without_a_tensor_every_program_reads_are_left_unchanged(kernel, args):
    forward = tfn.make_ir(kernel)(*args[:-1])
    chunked = chunk_rows(forward, forward.kernel, None, iter(range(10 ** 6)))
    assert chunked.kernel is forward.kernel and chunked.knob is None
    program = tfn.make_ir(tfn.vjp(kernel))(*args)
    assert ROWS_KNOB not in str(program) and "grid(" not in str(program)
    with pytest.raises(ConfigError, match="does not register this knob"):
        tfn.interpret(tfn.vjp(kernel), config=tfn.Config(tunables={ROWS_KNOB: 4}))(*args)


ROW_REDUCERS = {"softmax": next(c for c in CASES if c.name == "softmax"),
                 "log_softmax": next(c for c in CASES if c.name == "log_softmax")}


@pytest.mark.parametrize("name", sorted(ROW_REDUCERS))
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_backward_reducing_whole_rows_is_chunked_and_equals_torch_autograd(name, data):
    case = ROW_REDUCERS[name]
    m, n = data.draw(st.integers(1, 12), label="m"), data.draw(st.integers(ROW_CHUNK + 1, LONG_ROW), label="n")
    rows = data.draw(st.sampled_from([1, 2, 3, 5, 8]), label="rows")
    block = data.draw(st.sampled_from([1, 2, 4, 8]), label="block")
    x, cotangent = torch.randn(m, n, dtype=F64), torch.randn(m, n, dtype=F64)
    bwd = tfn.vjp(case.kernel)
    config = attrs.evolve(tt.spec_of(bwd, x, cotangent).default(), tunables={ROWS_KNOB: rows}, block_sizes=[block])
    tt.assert_matches(bwd, lambda *a: eager_gradients(case, a[:-1], a[-1]), x, cotangent, configs=[config])
    grid, = _backward(case.kernel, x, cotangent, **{ROWS_KNOB: rows}).kernel.params["region"].eqns
    assert grid.params["dims"] == (("grid", None),) and grid.inputs[1].value == -(-m // rows)


def test_softmax_backward_at_the_benchmark_size_compiles_pipelined_for_hopper_without_spills():
    x, cotangent = torch.randn(4096, 16384, dtype=torch.bfloat16), torch.randn(4096, 16384, dtype=torch.bfloat16)
    compiled = tt.compile_for_gpu(tfn.vjp(softmax), x, cotangent)
    ptx = compiled.asm["ptx"]
    assert ".target sm_90" in ptx and "cp.async" in ptx  # the next rows prefetched into shared memory
    assert ".local" not in ptx and compiled.metadata.num_warps == 16


@pytest.mark.parametrize("rows", [0, -2, "8", True, 2.0])
def test_a_bad_chunk_size_is_refused(rows):
    x, w = torch.randn(5, 6, dtype=F64), torch.randn(6, dtype=F64)
    with pytest.raises(ConfigError, match=re.escape(f"{ROWS_KNOB}={rows!r}")):
        tfn.interpret(tfn.vjp(rms_norm), config=tfn.Config(tunables={ROWS_KNOB: rows}))(x, w, x)


def test_the_tuner_searches_the_chunk_size():
    x, w = torch.randn(64, 32, dtype=F64), torch.randn(32, dtype=F64)
    spec = tt.spec_of(tfn.vjp(rms_norm), x, w, x)
    knob, = [k for k in spec.knobs if k.field == "tunables" and k.index == ROWS_KNOB]
    assert list(knob.choices) == [1, 2, 4, 8, 16, 32, 64]


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm"])
@pytest.mark.parametrize("reduction", ["atomic", "partials"])
def test_chunked_backward_compiles_for_hopper(name, reduction):
    args = _inputs(name, 64, 256, torch.bfloat16)
    cotangent = torch.randn(64, 256, dtype=torch.bfloat16)
    bwd = tfn.vjp(NORMS[name].kernel)
    config = attrs.evolve(tt.spec_of(bwd, *args, cotangent).default(),
                          tunables={ROWS_KNOB: 16, "vjp_reduction": reduction})
    compiled = tt.compile_for_gpu(bwd, *args, cotangent, config=config)
    assert ".target sm_90" in compiled.asm["ptx"]
    ttgir = compiled.asm["ttgir"]
    loop_end = ttgir.index("scf.yield")
    writes = "tt.atomic_rmw" if reduction == "atomic" else "tt.store"
    assert ttgir.count("tt.atomic_rmw") == (2 if name == "layer_norm" and reduction == "atomic" else
                                             1 if reduction == "atomic" else 0)
    assert writes in ttgir[loop_end:]  # the weight's gradient written after the row loop, once per program
