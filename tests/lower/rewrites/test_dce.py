"""Dead-code elimination: unused pure equations and loop carries go; effects stay."""
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.interpret import run_program
from tilefn.lower.passes import CANONICAL, CONFIGURED
from tilefn.lower.rewrites.dce import dce
from tilefn.trace.ir import walk_eqns


def prims(program):
    return [e.prim.name for e in walk_eqns(program.eqns)]


def loops(program):
    return [e for e in walk_eqns(program.eqns) if e.prim.name == "loop"]


def check(program, new, args, expected):
    """`new` computes what `program` computes (bit for bit) and what eager PyTorch computes."""
    before = run_program(program, [a.clone() for a in args])
    after = run_program(new, [a.clone() for a in args])
    for b, a, e in zip(*(v if isinstance(v, tuple) else (v,) for v in (before, after, expected))):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)  # bit for bit, dtype too
        assert torch.equal(a.signbit(), b.signbit())
        torch.testing.assert_close(a, e, equal_nan=True)


def unused_exp(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        a = x[t] * 2.0
        unused = torch.exp(a)  # noqa: F841
        out[t] = a + a
    return out


def test_drops_unused_pure_equation():
    x = torch.randn(100)
    program = tfn.make_ir(unused_exp)(x)
    new = dce(program)
    assert "exp" in prims(program) and "exp" not in prims(new)
    assert prims(new).count("store") == 1
    check(program, new, [x], x * 4)


def unused_load(x, y):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        ignored = y[t] + 1.0  # noqa: F841
        out[t] = x[t]
    return out


def test_drops_unused_load_and_its_users():
    x, y = torch.randn(50), torch.randn(50)
    program = tfn.make_ir(unused_load)(x, y)
    new = dce(program)
    assert prims(program).count("load") == 2 and prims(new).count("load") == 1
    assert "add" not in prims(new)
    check(program, new, [x, y], x)


def dead_carry(x):
    out = torch.empty(x.shape[0], device=x.device)
    for m in tl.tile(x.shape[0]):
        acc = torch.zeros([m], dtype=torch.float32)
        dead = torch.zeros([m], dtype=torch.float32)
        for n in tl.tile(x.shape[1]):
            acc = acc + x[m, n].sum(-1)
            dead = dead + 1.0
        out[m] = acc
    return out


def test_drops_unused_carry_keeps_used_one():
    x = torch.randn(64, 128)
    program = tfn.make_ir(dead_carry)(x)
    new = dce(program)
    inner, = [e for e in loops(new) if e.outputs]
    assert len(inner.outputs) == 1 and len(inner.params["region"].results) == 1
    assert len(inner.inputs) == 3 and len(inner.params["region"].params) == 2
    assert prims(new).count("full") == 1
    check(program, new, [x], x.sum(-1))


def chained_carries(x):
    out = torch.empty(x.shape[0], device=x.device)
    for m in tl.tile(x.shape[0]):
        acc = torch.zeros([m], dtype=torch.float32)
        step = torch.zeros([m], dtype=torch.float32)
        for n in tl.tile(x.shape[1]):
            step = step + 1.0
            acc = acc + x[m, n].sum(-1) * step
        out[m] = acc
    return out


def test_keeps_carry_needed_by_a_live_carry():
    x = torch.randn(8, 32)
    program = tfn.make_ir(chained_carries)(x)
    new = dce(program)
    inner, = [e for e in loops(new) if e.outputs]
    assert len(inner.outputs) == 2
    assert len(str(new)) == len(str(program))
    check(program, new, [x], run_program(program, [x]))


def store_in_loop(x):
    out = torch.empty_like(x)
    for m in tl.tile(x.shape[0]):
        acc = torch.zeros([m], dtype=torch.float32)
        for n in tl.tile(x.shape[1]):
            acc = acc + x[m, n].sum(-1)
            out[m, n] = x[m, n] + acc[:, None]
    return out


def test_keeps_effectful_loop_and_carry_used_by_its_store():
    x = torch.randn(16, 16)
    program = tfn.make_ir(store_in_loop)(x)
    new = dce(program)
    inner, = [e for e in loops(new) if e.outputs]
    assert len(inner.outputs) == 1
    assert prims(new) == prims(program)
    check(program, new, [x], run_program(program, [x]))


def pure_inner_loop(x):
    out = torch.empty_like(x)
    for m in tl.tile(x.shape[0]):
        acc = torch.zeros([m], dtype=torch.float32)
        for n in tl.tile(x.shape[1]):
            acc = acc + x[m, n].sum(-1)
        out[m, :] = x[m, :] * 2.0
    return out


def test_drops_pure_loop_with_unused_outputs():
    x = torch.randn(16, 16)
    program = tfn.make_ir(pure_inner_loop)(x)
    new = dce(program)
    assert len(loops(program)) == 2 and len(loops(new)) == 1
    assert "full" not in prims(new) and "reduce_sum" not in prims(new)
    check(program, new, [x], x * 2)


def two_grids(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] + 1.0
    for t in tl.tile(x.shape[0]):
        wasted = x[t] * 3.0  # noqa: F841
    return out


def test_drops_grid_loop_without_effects():
    x = torch.randn(40)
    program = tfn.make_ir(two_grids)(x)
    new = dce(program)
    assert len(program.kernel.params["region"].eqns) == 2
    assert len(new.kernel.params["region"].eqns) == 1
    assert [e.prim.name for e in new.eqns] == [e.prim.name for e in program.eqns]
    check(program, new, [x], x + 1)


def test_pure_input_unchanged_and_idempotent():
    x = torch.randn(64, 128)
    program = tfn.make_ir(dead_carry)(x)
    text, eqns = str(program), list(walk_eqns(program.eqns))
    once = dce(program)
    assert str(program) == text and list(walk_eqns(program.eqns)) == eqns
    twice = dce(once)
    assert str(twice) == str(once) and twice == once
    assert dce(twice, tfn.Config()) == once


def test_registered_pipeline_lowers_through_triton_interpreter():
    assert [name for name, _ in CANONICAL] == ["fold", "cse", "dce"]
    assert [name for name, _ in CONFIGURED] == ["reduction_loops", "scaled_max", "fold", "cse", "dce"]
    x = torch.randn(100)
    torch.testing.assert_close(tfn.jit(unused_exp)(x), x * 4)
    x2 = torch.randn(64, 128)
    torch.testing.assert_close(tfn.jit(dead_carry)(x2), x2.sum(-1))
