"""The IR is immutable: Var, Lit, Eqn, Region and Program are frozen, their containers persistent."""
import attrs
import pytest
import torch
from pyrsistent import PMap, PVector

import tilefn as tfn
from tilefn import lang as tl
from tilefn.trace.ir import Eqn, Lit, Program, Region, Var, substitute, walk_eqns
from tilefn.trace.primitives import P
from tilefn.trace.types import PyScalarType, TensorType


def matmul(x, y):
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = torch.addmm(acc, x[tm, tk], y[tk, tn])
        out[tm, tn] = acc
    return out


@pytest.fixture
def program() -> Program:
    return tfn.make_ir(matmul)(torch.randn(8, 4), torch.randn(4, 6))


def _f32(*shape):
    return TensorType(shape, torch.float32)


def test_var_is_frozen():
    var = Var(_f32(4))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        var.type = _f32(8)
    with pytest.raises(AttributeError):  # slots: no new attributes either
        var.name = "x"


def test_var_compares_by_identity_lit_by_value():
    assert Var(_f32(4)) != Var(_f32(4))
    var = Var(_f32(4))
    assert var == var and len({var, var}) == 1
    assert Lit(1.5, PyScalarType(float)) == Lit(1.5, PyScalarType(float))


def test_lit_is_frozen():
    lit = Lit(2, PyScalarType(int))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        lit.value = 3


def test_eqn_is_frozen_and_its_containers_are_immutable():
    a, b = Var(_f32(4)), Var(_f32(4))
    eqn = Eqn(P["add"], [a, b], [Var(_f32(4))], {"k": 1})
    assert isinstance(eqn.inputs, tuple) and isinstance(eqn.outputs, tuple)
    assert isinstance(eqn.params, PMap)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        eqn.prim = P["sub"]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        eqn.inputs = (b, a)
    with pytest.raises(TypeError):
        eqn.params["k"] = 2
    with pytest.raises(TypeError):
        eqn.inputs[0] = b
    assert eqn.params.set("k", 2) is not eqn.params and eqn.params["k"] == 1


def test_region_is_frozen_and_its_equations_persistent():
    a = Var(_f32(4))
    eqn = Eqn(P["neg"], [a], [Var(_f32(4))])
    region = Region([a], [eqn], [eqn.outputs[0]])
    assert isinstance(region.eqns, PVector)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        region.eqns = []
    with pytest.raises(TypeError):
        region.eqns[0] = eqn
    grown = region.eqns.append(eqn)  # a persistent vector: append returns a new one
    assert len(grown) == 2 and len(region.eqns) == 1


def test_program_is_frozen(program):
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        program.name = "other"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        program.eqns = []
    with pytest.raises(TypeError):
        program.eqns[0] = program.eqns[-1]
    with pytest.raises(TypeError):
        program.hints[program.inputs[0]] = "renamed"
    assert isinstance(program.eqns, PVector) and isinstance(program.hints, PMap)
    assert isinstance(program.inputs, tuple) and isinstance(program.blocks, tuple)


def test_every_traced_equation_is_frozen(program):
    """Walk the whole traced program, nested regions included: nothing in it is mutable."""
    eqns = list(walk_eqns(program.eqns))
    assert {e.prim.name for e in eqns} >= {"host", "kernel", "loop", "load", "dot", "store", "full"}
    for eqn in eqns:
        assert attrs.has(type(eqn)) and type(eqn).__setattr__ is not object.__setattr__
        assert isinstance(eqn.inputs, tuple) and isinstance(eqn.outputs, tuple)
        assert isinstance(eqn.params, PMap)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            eqn.params = {}
        if "region" in eqn.params:
            region = eqn.params["region"]
            assert isinstance(region, Region) and isinstance(region.eqns, PVector)
            assert isinstance(region.params, tuple) and isinstance(region.results, tuple)
    for block in program.blocks:
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            block.extent = 1


def test_rewrites_return_new_values(program):
    """`substitute` and `attrs.evolve` build new regions; the traced program is untouched."""
    before = str(program)
    loop = next(e for e in walk_eqns(program.eqns) if e.prim.name == "loop" and not e.params["grid"])
    region = loop.params["region"]
    carried = region.params[-1]
    fresh = Var(carried.type)
    rewritten = substitute(region, {carried: fresh})
    assert rewritten is not region
    assert any(fresh in e.inputs for e in rewritten.eqns)
    assert not any(fresh in e.inputs for e in region.eqns)
    renamed = attrs.evolve(program, name="renamed")
    assert renamed.name == "renamed" and program.name == "matmul"
    assert str(program) == before


def test_tracing_twice_prints_the_same_text():
    x, y = torch.randn(8, 4), torch.randn(4, 6)
    assert str(tfn.make_ir(matmul)(x, y)) == str(tfn.make_ir(matmul)(x, y))


def test_programs_are_specialised_per_signature():
    trace = tfn.make_ir(matmul)
    small = trace(torch.randn(8, 4), torch.randn(4, 6))
    other = trace(torch.randn(8, 4, dtype=torch.float16), torch.randn(4, 6, dtype=torch.float16))
    assert "f16[8, 4]" in str(other) and "f32[8, 4]" in str(small)
    assert trace(torch.randn(8, 4), torch.randn(4, 6)) is small  # cached per signature
