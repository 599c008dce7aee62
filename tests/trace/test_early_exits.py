"""Early exits restated for traced branches (tilefn.trace.early_exits) and helper functions rewritten
in turn (branches.callee): Python's meaning kept for static values, the IR for device ones, and clear
errors at the user's line for the exits that stay refused."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as hs

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import UnsupportedStatement
from tilefn.trace import branches
from tilefn.trace.branch_source import branching
from tilefn.trace.ir import walk_eqns
from tilefn.trace.primitives import cond_p, store_p

I32 = torch.int32


def exits_everywhere(values, limit):
    """Plain Python with every kind of exit the restatement moves: run as written and rewritten."""
    total, seen = 0, []
    for v in values:
        if v < 0:
            continue
        elif v == 0:
            seen.append("zero")
            if limit > 2:
                continue
        if v > limit:
            break
        total += v
        if v % 3 == 0:
            seen.append(v)
            continue
    if total > 10:
        return total, seen
    if not seen:
        return -1, seen
    return 0, seen


def helper_style(a, b):
    if a > b:
        return a - b
    elif a == b:
        pass
    else:
        return b - a


@given(values=hs.lists(hs.integers(-3, 9), max_size=8), limit=hs.integers(0, 8), a=hs.integers(-4, 4),
       b=hs.integers(-4, 4))
def test_the_restated_source_keeps_pythons_meaning_for_static_values(values, limit, a, b):
    assert branching(exits_everywhere, branches)(values, limit) == exits_everywhere(values, limit)
    assert branching(helper_style, branches)(a, b) == helper_style(a, b)
    assert branching(exits_everywhere, branches) is not exits_everywhere  # (really rewritten)


def skip_negative(x, flags):
    out = torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        if flags[i] < 0:
            continue
        out[i] = x[i] * 2
    return out


def test_a_continue_under_a_device_if_puts_the_rest_of_the_body_in_the_other_branch():
    x, flags = torch.randn(4), torch.tensor([1, -1, 0, -2], dtype=I32)
    program = tfn.make_ir(skip_negative)(x, flags)
    cond = next(e for e in walk_eqns(program.eqns) if e.prim is cond_p)
    assert not cond.params["region"].eqns and [e.prim for e in cond.params["orelse"].eqns][-1] is store_p
    assert torch.equal(tfn.interpret(skip_negative)(x, flags), torch.where(flags < 0, 0.0, x * 2))


def _doubled_unless(v, f):
    if f > 0:
        return v
    return v * 2


def calls_a_helper(x, flags):
    out = torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        out[i] = _doubled_unless(x[i], flags[i])
    return out


def test_a_helper_branching_on_a_device_scalar_is_traced_into_a_cond():
    x, flags = torch.randn(5), torch.tensor([1, 0, 2, -1, 0], dtype=I32)
    program = tfn.make_ir(calls_a_helper)(x, flags)
    assert sum(e.prim is cond_p for e in walk_eqns(program.eqns)) == 1
    assert torch.equal(tfn.interpret(calls_a_helper)(x, flags), torch.where(flags > 0, x, x * 2))


def return_in_grid(x, flags):
    out = torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        if flags[i] > 0:
            return out
        out[i] = x[i]
    return out


def continue_then_more(x, flags):
    out = torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        if flags[i] > -5:
            if flags[i] > 0:
                continue
            out[i] = x[i]
        out[i] = out[i] + 1
    return out


def _returns_from_a_loop(v, f):
    for _ in range(2):
        if f > 0:
            return v
        v = v + 1
    return v


def helper_returns_from_a_loop(x, flags):
    out = torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        out[i] = _returns_from_a_loop(x[i], flags[i])
    return out


@pytest.mark.parametrize("kernel, line", [
    (return_in_grid, "return out"),
    (continue_then_more, "continue"),
    (helper_returns_from_a_loop, "return v"),
], ids=["return-in-a-tile-loop", "continue-before-more-work", "helper-return-in-a-loop"])
def test_exits_that_cannot_end_a_branch_are_refused_at_the_users_line(kernel, line):
    with pytest.raises(UnsupportedStatement, match="`return`, `break` or `continue` inside an `if`") as info:
        tfn.make_ir(kernel)(torch.randn(3), torch.tensor([1, 0, 2], dtype=I32))
    assert line in str(info.value) and "test_early_exits.py" in str(info.value)
