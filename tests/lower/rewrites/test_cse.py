"""Common-subexpression elimination: equal pure equations in scope are computed once."""
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.interpret import run_program
from tilefn.lower.rewrites.cse import cse
from tilefn.trace.ir import walk_eqns


def prims(program):
    return [e.prim.name for e in walk_eqns(program.eqns)]


def check(program, new, args, expected, config=None):
    """`new` computes what `program` computes (bit for bit) and what eager PyTorch computes."""
    before = run_program(program, [a.clone() for a in args], config)
    after = run_program(new, [a.clone() for a in args], config)
    for b, a, e in zip(*(v if isinstance(v, tuple) else (v,) for v in (before, after, expected))):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)  # bit for bit, dtype too
        assert torch.equal(a.signbit(), b.signbit())
        torch.testing.assert_close(a, e, equal_nan=True)


def repeated(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        s = x[t] * 2.0 + 1.0
        b = x[t] * 2.0
        out[t] = s + b
    return out


def test_merges_repeated_load_and_pointwise():
    x = torch.randn(100)
    program = tfn.make_ir(repeated)(x)
    new = cse(program)
    assert prims(program).count("load") == 2 and prims(new).count("load") == 1
    assert prims(program).count("mul") == 2 and prims(new).count("mul") == 1
    mul, = [e for e in walk_eqns(new.eqns) if e.prim.name == "mul"]
    assert new.hints[mul.outputs[0]] == "b"  # the merged value keeps a user's name
    check(program, new, [x], (x * 2 + 1) + x * 2)


def outer_reused_inside(x):
    out = torch.empty_like(x)
    for m in tl.tile(x.shape[0]):
        c = m.index * 2
        acc = torch.zeros([m], dtype=torch.float32)
        for n in tl.tile(x.shape[1]):
            d = m.index * 2
            acc = acc + x[m, n].sum(-1) + d
        out[m, :] = x[m, :] + (acc + c)[:, None]
    return out


def test_inner_region_reuses_outer_value():
    x = torch.randn(8, 16)
    program = tfn.make_ir(outer_reused_inside)(x)
    new = cse(program)
    assert prims(program).count("tile_index") == 2 and prims(new).count("tile_index") == 1
    assert prims(new).count("mul") == 1
    inner, = [e for e in walk_eqns(new.eqns) if e.prim.name == "loop" and e.outputs]
    assert "tile_index" not in [e.prim.name for e in inner.params["region"].eqns]
    rows = torch.arange(8, dtype=torch.float32) * 2
    config = tfn.Config(block_sizes=[8, 4])  # 4 inner tiles
    check(program, new, [x], x + (x.sum(-1) + 4 * rows + rows)[:, None], config)


def inner_not_visible_outside(x):
    out = torch.empty_like(x)
    for m in tl.tile(x.shape[0]):
        acc = torch.zeros([m], dtype=torch.float32)
        for n in tl.tile(x.shape[1]):
            acc = acc + x[m, n].sum(-1) + m.index * 3
        for n in tl.tile(x.shape[1]):
            acc = acc + x[m, n].sum(-1) + m.index * 3
        out[m, :] = x[m, :] + (acc + m.index * 3)[:, None]
    return out


def test_inner_values_stay_in_their_region():
    x = torch.randn(8, 16)
    program = tfn.make_ir(inner_not_visible_outside)(x)
    new = cse(program)
    assert prims(new).count("tile_index") == 3 and prims(new).count("mul") == 3
    rows = torch.arange(8, dtype=torch.float32) * 3
    config = tfn.Config(block_sizes=[4, 8, 16])  # 2 tiles in the first inner loop, 1 in the second
    check(program, new, [x], x + (2 * x.sum(-1) + 3 * rows + rows)[:, None], config)


def load_across_store(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        a = x[t]
        x[t] = a + 1.0
        b = x[t]
        out[t] = b + a
    return out


def test_no_load_merge_across_store():
    x = torch.randn(20)
    program = tfn.make_ir(load_across_store)(x)
    new = cse(program)
    assert prims(new).count("load") == 2
    check(program, new, [x], 2 * x + 1)


def outer_load_inside(x, y):
    out = torch.empty_like(x)
    for m in tl.tile(x.shape[0]):
        acc = y[m]
        for n in tl.tile(x.shape[1]):
            acc = acc + x[m, n].sum(-1) * y[m]
        out[m, :] = x[m, :] + acc[:, None]
    return out


def test_no_load_merge_across_regions():
    x, y = torch.randn(8, 16), torch.randn(8)
    program = tfn.make_ir(outer_load_inside)(x, y)
    new = cse(program)
    assert prims(new).count("load") == prims(program).count("load")
    check(program, new, [x, y], x + (y + x.sum(-1) * y)[:, None])


def literal_kinds(x):
    pos, neg = torch.empty_like(x), torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        a = x[t]
        pos[t] = a * 0.0 + (a * 2 - a * 2.0)
        neg[t] = a * -0.0
    return pos, neg


def test_literals_compare_by_value_and_type():
    x = torch.rand(16) + 0.5
    program = tfn.make_ir(literal_kinds)(x)
    new = cse(program)
    assert prims(new).count("mul") == prims(program).count("mul") == 4
    check(program, new, [x], (x * 0.0, x * -0.0))


def signed_zero_fills(x):
    pos, neg = torch.empty_like(x), torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        pos[t] = tl.full([t], 0.0)
        neg[t] = tl.full([t], -0.0)
    return pos, neg


def test_float_params_compare_exactly():
    x = torch.randn(8)
    program = tfn.make_ir(signed_zero_fills)(x)
    new = cse(program)
    assert prims(new).count("full") == 2
    check(program, new, [x], (torch.zeros(8), torch.full((8,), -0.0)))


def different_params(x):
    out = torch.empty(x.shape[0], device=x.device)
    for m in tl.tile(x.shape[0]):
        a = x[m, :]
        out[m] = a.sum(-1) + a.sum(-1, keepdim=True).squeeze(-1) + a.sum(-1)
    return out


def test_params_must_match():
    x = torch.randn(8, 16)
    program = tfn.make_ir(different_params)(x)
    new = cse(program)
    assert prims(program).count("reduce_sum") == 3 and prims(new).count("reduce_sum") == 2
    check(program, new, [x], 3 * x.sum(-1))


def test_pure_input_unchanged_and_idempotent():
    x = torch.randn(8, 16)
    program = tfn.make_ir(outer_reused_inside)(x)
    text, eqns, hints = str(program), list(walk_eqns(program.eqns)), program.hints
    once = cse(program)
    assert str(program) == text and list(walk_eqns(program.eqns)) == eqns and program.hints == hints
    twice = cse(once, tfn.Config())
    assert twice == once and str(twice) == str(once)
