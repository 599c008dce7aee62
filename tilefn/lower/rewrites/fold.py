"""Constant folding: pointwise equations and converts of literals become literals; identities vanish.

Folded values are computed as the reference interpreter would, rounded to the output's dtype,
and become Lits typed like the Var they replace. They replace that Var only as an input of
pointwise or convert equations (a literal loop carry or stored value could change Triton's
typing); while other uses remain, the folded equation becomes a typed 0-d `full`.
Identities (`x * 1`, `1 * x`, `x / 1`, `x + 0`, `0 + x`, `x - 0`, a convert to x's own dtype)
are dropped only when the output type equals x's type exactly, and only when exact in IEEE
arithmetic: a float `x + 0.0` is kept (it turns -0.0 into +0.0); `x + -0.0` and `x - 0.0` fold.
`full` is never folded.
"""
from __future__ import annotations

import math

import attrs
import torch

from ...trace.ir import Eqn, Lit, Program, Region, Var, map_regions, regions
from ...trace.primitives import POINTWISE, P, convert_p, full_p
from ...trace.types import TensorType

_CONSUMERS = frozenset(POINTWISE) | {convert_p}


def _value(lit: Lit):
    """A literal as the interpreter sees it: a Python number, or a 0-d tensor for a typed one."""
    if isinstance(lit.type, TensorType):
        return torch.tensor(lit.value, dtype=lit.type.dtype)
    return lit.value


def _fold_literal(eqn: Eqn) -> Lit | None:
    """The Lit an all-literal pointwise or convert equation computes, or None."""
    out = eqn.outputs[0].type if len(eqn.outputs) == 1 else None
    if not (isinstance(out, TensorType) and out.shape == () and eqn.inputs):
        return None
    if eqn.prim not in _CONSUMERS or not all(isinstance(a, Lit) for a in eqn.inputs):
        return None
    try:
        args = [_value(a) for a in eqn.inputs]
        result = args[0] if eqn.prim is convert_p else POINTWISE[eqn.prim](*args)
        return Lit(torch.as_tensor(result).to(out.dtype).item(), out)
    except (TypeError, RuntimeError, ValueError, OverflowError):
        return None


def _is(atom, value, sign=None) -> bool:
    """Whether `atom` is a literal equal to `value` (with the sign of zero `sign`, when given)."""
    if not isinstance(atom, Lit) or isinstance(atom.value, complex) or atom.value != value:
        return False
    return sign is None or math.copysign(1.0, atom.value) == sign


def _identity(eqn: Eqn):
    """The operand an identity equation returns unchanged, or None."""
    ins, out = eqn.inputs, eqn.outputs[0].type if len(eqn.outputs) == 1 else None
    floating = isinstance(out, TensorType) and out.dtype.is_floating_point
    zero = (lambda a: _is(a, 0, -1.0)) if floating else (lambda a: _is(a, 0))
    candidates = []
    if eqn.prim is P["mul"]:
        candidates = [ins[0]] * _is(ins[1], 1) + [ins[1]] * _is(ins[0], 1)
    elif eqn.prim is P["div"]:
        candidates = [ins[0]] * _is(ins[1], 1)
    elif eqn.prim is P["add"]:
        candidates = [ins[0]] * zero(ins[1]) + [ins[1]] * zero(ins[0])
    elif eqn.prim is P["sub"]:
        candidates = [ins[0]] * (_is(ins[1], 0, 1.0) if floating else _is(ins[1], 0))
    elif eqn.prim is convert_p:
        candidates = [ins[0]]
    return next((x for x in candidates if isinstance(x, Var) and x.type == out), None)


def _rename(eqn: Eqn, mapping: dict) -> Eqn:
    """`eqn` with mapped Vars replaced; literal replacements only where `eqn` is a consumer."""
    def sub(a):
        new = mapping.get(a, a) if isinstance(a, Var) else a
        return new if isinstance(new, Var) or eqn.prim in _CONSUMERS else a
    return attrs.evolve(eqn, inputs=tuple(sub(a) for a in eqn.inputs))


def _eqns(eqns, mapping: dict, folded: dict) -> list:
    """Fold `eqns` in order, recording replacements in `mapping` and literal folds in `folded`."""
    out = []
    for eqn in eqns:
        eqn = _rename(eqn, mapping)
        eqn = map_regions(eqn, lambda region: _fold_region(region, mapping, folded))
        same = _identity(eqn) if eqn.prim in _CONSUMERS else None
        if same is not None:
            mapping[eqn.outputs[0]] = same
            continue
        lit = _fold_literal(eqn)
        if lit is not None:
            mapping[eqn.outputs[0]] = lit
            folded[eqn.outputs[0]] = lit
        out.append(eqn)
    return out


def _fold_region(region: Region, mapping: dict, folded: dict) -> Region:
    body = _eqns(region.eqns, mapping, folded)
    results = tuple(mapping[r] if isinstance(mapping.get(r), Var) else r for r in region.results)
    return Region(region.params, body, results)


def _uses(eqns, used: set) -> set:
    """Every Var that `eqns` (and their regions' results) read, added to `used`."""
    for eqn in eqns:
        used.update(a for a in eqn.inputs if isinstance(a, Var))
        for region in regions(eqn):
            _uses(region.eqns, used)
            used.update(r for r in region.results if isinstance(r, Var))
    return used


def _finish(eqns, folded: dict, used: set) -> list:
    """Drop folded equations nobody reads; a still-read one becomes a typed 0-d `full`."""
    out = []
    for eqn in eqns:
        lit = folded.get(eqn.outputs[0]) if eqn.outputs else None
        if lit is not None and eqn.outputs[0] not in used:
            continue
        if lit is not None:
            params = {"shape": (), "value": lit.value, "dtype": lit.type.dtype}
            eqn = Eqn(full_p, (), eqn.outputs, params, source=eqn.source)
        eqn = map_regions(eqn, lambda r: Region(r.params, _finish(r.eqns, folded, used), r.results))
        out.append(eqn)
    return out


def fold(program: Program, config=None) -> Program:
    """`program` with literal computations and identities folded away."""
    folded: dict = {}
    eqns = _eqns(program.eqns, {}, folded)
    if folded:
        eqns = _finish(eqns, folded, _uses(eqns, set()))
    return attrs.evolve(program, eqns=eqns)
