"""Constant folding: literal-only pointwise ops and converts become literals; exact identities vanish."""
import attrs
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.interpret import run_program
from tilefn.lower.lowered import lower
from tilefn.lower.rewrites.fold import fold
from tilefn.trace.ir import Lit, Region, walk_eqns
from tilefn.trace.types import PyScalarType, TensorType


def prims(program):
    return [e.prim.name for e in walk_eqns(program.eqns)]


def check(program, new, args, expected):
    """`new` computes what `program` computes (bit for bit) and what eager PyTorch computes."""
    before = run_program(program, [a.clone() for a in args])
    after = run_program(new, [a.clone() for a in args])
    for b, a, e in zip(*(v if isinstance(v, tuple) else (v,) for v in (before, after, expected))):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)  # bit for bit, dtype too
        assert torch.equal(a.signbit(), b.signbit())
        torch.testing.assert_close(a, e, equal_nan=True)


def identities(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        a = x[t]
        out[t] = ((((a * 1.0) * 1) / 1.0 - 0.0) + -0.0).to(torch.float32) + 1 * a
    return out


def test_exact_identities_fold():
    x = torch.tensor([-0.0, 0.0, 1.5, -2.0, float("inf"), float("nan"), 3.0])
    program = tfn.make_ir(identities)(x)
    new = fold(program)
    assert prims(program).count("mul") == 3 and "div" in prims(program)
    assert prims(new) == ["host", "kernel", "loop", "load", "add", "store"]
    check(program, new, [x], 2 * x)


def kept(x, i, b):
    out = torch.empty_like(x)
    ints = torch.empty_like(i)
    for t in tl.tile(x.shape[0]):
        out[t] = (x[t] + 0.0) + i[t] * 1.0 + b[t] * 1 + (0.0 + x[t]) + x[t] - -0.0
        ints[t] = i[t] + 0 + (0 + i[t]) - 0 + (b[t] * True).to(torch.int32)
    return out, ints


def test_inexact_or_type_changing_identities_stay():
    x = torch.tensor([-0.0, 1.0, -3.0, 0.0])
    i, b = torch.tensor([1, -2, 0, 7], dtype=torch.int32), torch.tensor([True, False, True, False])
    program = tfn.make_ir(kept)(x, i, b)
    new = fold(program)
    folded = [e.prim.name for e in walk_eqns(program.eqns) if e.prim.name in ("add", "sub", "mul")]
    left = [e.prim.name for e in walk_eqns(new.eqns) if e.prim.name in ("add", "sub", "mul")]
    # float: x + 0.0, 0.0 + x, x - -0.0 stay (they turn -0.0 into +0.0); i * 1.0 and b * 1 change dtype;
    # int: i + 0, 0 + i, - 0 fold; bool b * True folds (b1 stays b1)
    assert len(folded) - len(left) == 4
    expected_out = (x + 0.0) + i * 1.0 + b * 1 + (0.0 + x) + x - -0.0
    check(program, new, [x, i, b], (expected_out, (2 * i + b).to(torch.int32)))


def scalar_chain(x):
    out = torch.empty_like(x)
    total = torch.empty([x.shape[0]], dtype=torch.float32, device=x.device)
    for i in tl.grid(x.shape[0]):
        s = i * 0 + 3
        acc = s.to(torch.float32)
        for n in tl.tile(x.shape[1]):
            acc = acc + x[i, n].sum(-1)
        out[i, :] = x[i, :] * s
        total[i] = acc
    return out, total


def literal_seeded(program):
    """`program` with `mul i, 0` made `mul 5, 0`: tracing itself never writes literal-only equations."""
    def edit(eqns):
        out = []
        for e in eqns:
            if "region" in e.params:
                r = e.params["region"]
                e = attrs.evolve(e, params=e.params.set("region", Region(r.params, edit(r.eqns), r.results)))
            elif e.prim.name == "mul" and e.inputs[1] == Lit(0, PyScalarType(int)):
                e = attrs.evolve(e, inputs=(Lit(5, TensorType((), torch.int32)), e.inputs[1]))
            out.append(e)
        return out
    return attrs.evolve(program, eqns=edit(program.eqns))


def test_literal_chain_folds_and_keeps_typed_value_for_non_pointwise_use():
    x = torch.randn(4, 16)
    program = literal_seeded(tfn.make_ir(scalar_chain)(x))
    new = fold(program)
    eqns = list(walk_eqns(new.eqns))
    assert [e.prim.name for e in eqns if e.prim.name in ("add", "mul", "convert", "full")] == ["full", "add", "mul"]
    full, = [e for e in eqns if e.prim.name == "full"]  # the loop's initial carry: a typed 0-d value
    assert dict(full.params) == {"shape": (), "value": 3.0, "dtype": torch.float32}
    mul, = [e for e in eqns if e.prim.name == "mul"]
    assert mul.inputs[1] == Lit(3, TensorType((), torch.int32))
    check(program, new, [x], (x * 3, x.sum(-1) + 3))
    out, total = lower(program).compile()(x)  # through every pass and the Triton interpreter
    torch.testing.assert_close(out, x * 3)
    torch.testing.assert_close(total, x.sum(-1) + 3)


def rounded(x):
    out = torch.empty_like(x)
    for i in tl.grid(x.shape[0]):
        h = (i * 0 + 1).to(torch.float16) * 0.1
        out[i, :] = x[i, :] * h.to(torch.float32)
    return out


def test_literal_values_rounded_to_output_dtype():
    x = torch.randn(2, 8)
    program = literal_seeded(tfn.make_ir(rounded)(x))
    new = fold(program)
    eqns = list(walk_eqns(new.eqns))
    mul, = [e for e in eqns if e.prim.name == "mul"]
    tenth = torch.tensor(0.1, dtype=torch.float16).item()
    assert mul.inputs[1] == Lit(tenth, TensorType((), torch.float32))
    check(program, new, [x], x * tenth)


def zeros_acc(x):
    out = torch.empty(x.shape[0], device=x.device)
    for m in tl.tile(x.shape[0]):
        acc = torch.zeros([m], dtype=torch.float32)
        for n in tl.tile(x.shape[1]):
            acc = acc + x[m, n].sum(-1)
        out[m] = acc
    return out


def test_full_is_not_folded():
    x = torch.randn(8, 16)
    program = tfn.make_ir(zeros_acc)(x)
    new = fold(program)
    assert new == program and prims(new).count("full") == 1


def test_pure_input_unchanged_and_idempotent():
    x = torch.randn(4, 16)
    program = literal_seeded(tfn.make_ir(scalar_chain)(x))
    text, eqns = str(program), list(walk_eqns(program.eqns))
    once = fold(program)
    assert str(program) == text and list(walk_eqns(program.eqns)) == eqns
    twice = fold(once, tfn.Config())
    assert twice == once and str(twice) == str(once)
