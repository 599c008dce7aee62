"""Tracing `if` and `while` on device scalars (tilefn.trace.branches, branch_source): the IR they
build, static tests keeping Python's meaning, and the errors for what cannot be traced."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import DataDependentControlFlow, TracingError, UnsupportedStatement
from tilefn.interpret import run_program
from tilefn.lower.rewrites.dce import dce
from tilefn.trace import branches
from tilefn.trace.branch_source import branching
from tilefn.trace.ir import walk_eqns
from tilefn.trace.primitives import cond_p, store_p, while_p

I32 = torch.int32


def prims(program):
    return [e.prim for e in walk_eqns(program.eqns)]


def select_row(x, flags):
    out = torch.empty_like(x)
    for i in tl.grid(x.size(0)):
        if flags[i] > 0:
            y = x[i, :] * 2
            offset = 0.5
        else:
            y = x[i, :]
            offset = 0.5  # the same Python number in both branches stays a Python number
        out[i, :] = y + offset
    return out


def test_an_if_on_a_device_scalar_is_one_cond_with_both_branches():
    program = tfn.make_ir(select_row)(torch.randn(3, 8), torch.tensor([1, 0, 2], dtype=I32))
    text = str(program)
    assert prims(program).count(cond_p) == 1
    assert "y: f32[8] = cond" in text and "else:" in text and "yield row" not in text
    cond = next(e for e in walk_eqns(program.eqns) if e.prim is cond_p)
    then, orelse = ([e.prim.name for e in cond.params[k].eqns] for k in ("region", "orelse"))
    assert then == ["load", "mul"] and orelse == ["load"]  # each branch loads its own row
    assert "add y, 0.5" in text


def counted(x, n):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        acc = torch.zeros_like(x[t])
        steps = torch.zeros([], dtype=torch.int32)
        while steps < n[0]:
            acc = acc + 1.0
            steps = steps + 1
        out[t] = acc
    return out


def test_a_while_carries_the_names_its_body_rebinds_and_its_next_condition():
    program = tfn.make_ir(counted)(torch.randn(4), torch.tensor([3], dtype=I32))
    loop = next(e for e in walk_eqns(program.eqns) if e.prim is while_p)
    assert len(loop.inputs) == 3 and len(loop.outputs) == 2  # (first condition, acc, steps) -> (acc, steps)
    assert loop.params["region"].results[0].type.dtype == torch.bool
    assert "while " in str(program) and "carry(" in str(program)


def static_branches(x, mode: int, limit: int):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        if mode == 1:
            y = x[t] + 1
        else:
            y = x[t] - 1
        steps = 0
        while steps < limit:  # a host loop: unrolled while tracing
            y = y * 2
            steps += 1
            if steps > 5:
                break
        out[t] = y
    if mode == 2:
        return out, out
    return out


def test_static_tests_keep_python_semantics_and_trace_no_cond():
    x = torch.randn(5)
    program = tfn.make_ir(static_branches)(x, 1, 9)
    assert cond_p not in prims(program) and while_p not in prims(program)
    assert torch.allclose(tfn.interpret(static_branches)(x, 1, 9), (x + 1) * 64)
    assert len(tfn.interpret(static_branches)(x, 2, 0)) == 2


def plain(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t]
    return out


def test_a_kernel_without_if_or_while_runs_as_written():
    assert branching(plain, branches) is plain
    assert branching(select_row, branches) is not select_row
    assert branching(select_row, branches).__code__.co_filename == select_row.__code__.co_filename


def dead_branch(x, flags):
    out = torch.empty_like(x)
    for i in tl.grid(x.size(0)):
        unused = x[i]
        if flags[i] > 0:
            unused = unused * 3
        if flags[i] < 0:
            out[i] = x[i]
    return out


def test_dce_drops_a_cond_nobody_reads_and_keeps_one_that_stores():
    x, flags = torch.randn(4), torch.tensor([1, -1, 0, -2], dtype=I32)
    program = dce(tfn.make_ir(dead_branch)(x, flags))
    conds = [e for e in walk_eqns(program.eqns) if e.prim is cond_p]
    assert len(conds) == 1 and store_p in [e.prim for e in conds[0].params["region"].eqns]
    out = run_program(program, [x, flags])
    assert torch.equal(out[flags < 0], x[flags < 0])


def tile_condition(x, flags):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        if x[t] > 0:
            out[t] = x[t]
    return out


def early_return(x, flags):
    out = torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        if flags[i] > 0:
            return out
        out[i] = x[i]
    return out


def break_in_while(x, flags):
    out = torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        v = flags[i]
        while v > 0:
            v = v - 1
            break
        out[i] = x[i] + v
    return out


def one_sided(x, flags):
    out = torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        if flags[i] > 0:
            only_here = x[i] * 2
        out[i] = only_here
    return out


def mismatched(x, flags):
    out = torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        if flags[i] > 0:
            y = x[i]
        else:
            y = x[i].to(torch.float16)
        out[i] = y
    return out


def host_then_device(x, flags):
    out = torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        v = 3
        while v > 0:
            v = v - flags[i]
        out[i] = x[i]
    return out


@pytest.mark.parametrize("kernel, error, message, line", [
    (tile_condition, DataDependentControlFlow, "tile-shaped value .* torch.where", "if x[t] > 0:"),
    (early_return, UnsupportedStatement, "`return`, `break` or `continue` inside an `if`", "return out"),
    (break_in_while, UnsupportedStatement, "inside an `while`", "break"),
    (one_sided, TracingError, "`only_here` after the `if` at .* is bound in only one branch", "out[i] = only_here"),
    (mismatched, TracingError, "f32\\[\\] and f16\\[\\]; make them match", "out[i] = y"),
    (host_then_device, DataDependentControlFlow, "became a device value after 1 iteration", "while v > 0:"),
], ids=["tile-shaped", "return", "break", "one-sided", "mismatched", "host-then-device"])
def test_what_cannot_be_traced_is_a_clear_error_at_the_users_line(kernel, error, message, line):
    with pytest.raises(error, match=message) as info:
        tfn.make_ir(kernel)(torch.randn(3), torch.tensor([1, 0, 2], dtype=I32))
    assert line in str(info.value) and "test_branches.py" in str(info.value)


def test_bool_of_a_device_value_outside_a_statement_is_still_refused():
    def kernel(x):
        out = torch.empty_like(x)
        for i in tl.grid(x.size(0)):
            out[i] = x[i] if bool(x[i] > 0) else -x[i]
        return out

    with pytest.raises(DataDependentControlFlow, match="torch.where"):
        tfn.make_ir(kernel)(torch.randn(3))


def random_rows(x, flags):
    out = torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        if flags[i] > 0:
            out[i, :] = torch.rand_like(x[i, :])
    return out


def random_rows_unguarded(x, flags):
    out = torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        out[i, :] = torch.rand_like(x[i, :])
    return out


def test_random_numbers_in_a_branch_count_the_loops_around_it():
    x, flags = torch.zeros(4, 8), torch.tensor([1, 0, 1, 1], dtype=I32)
    torch.manual_seed(0)
    guarded = tfn.interpret(random_rows)(x, flags)
    torch.manual_seed(0)
    unguarded = tfn.interpret(random_rows_unguarded)(x, flags)
    taken = flags > 0
    assert torch.equal(guarded[taken], unguarded[taken]) and not guarded[~taken].any()
    assert not torch.equal(guarded[0], guarded[2])  # each row its own numbers


def make_scaled(scale):
    def scaled(x, flags, *, bias=1.0):
        out = torch.empty_like(x)
        for i in tl.grid(x.size(0)):
            if flags[i] > 0:
                out[i] = x[i] * scale + bias
            else:
                out[i] = x[i]
        return out
    return scaled


def test_the_rewritten_kernel_keeps_its_closure_cells_and_defaults():
    x, flags = torch.randn(5), torch.tensor([1, 0, 1, 0, 2], dtype=I32)
    kernel = make_scaled(3.0)
    assert torch.allclose(tfn.interpret(kernel)(x, flags), torch.where(flags > 0, x * 3 + 1, x))
    assert torch.allclose(tfn.interpret(kernel)(x, flags, bias=-2.0), torch.where(flags > 0, x * 3 - 2, x))
