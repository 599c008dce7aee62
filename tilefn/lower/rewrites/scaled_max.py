"""The max (or min) of a tile scaled by a positive constant becomes the scaled max: `amax(x * c)` -> `amax(x) * c`.

Attention scales its scores (`dot(q, k.T) * scale`), takes their row max and then `exp2(scores - m)`:
with the max taken of the unscaled product, `scores` has one use left and the GPU computes
`x * c - m` as one fused multiply-add per element instead of a multiply, then a subtract.
Exact for a finite c > 0: rounding is monotone, so max_i fl(x_i * c) = fl(max_i x_i * c); a NaN
propagates through both forms; -inf stays -inf. (c = +inf is left alone: 0 * inf is NaN per element.)
"""
from __future__ import annotations

import math

import attrs

from ...trace import primitives as p
from ...trace.ir import Eqn, Lit, Program, Region, Var, map_regions, walk_eqns
from ...trace.primitives import P
from ...trace.types import TensorType

_EXTREMA = (p.reduce_max_p, p.reduce_min_p)


def _positive(atom) -> bool:
    """Whether `atom` is a literal finite real number > 0."""
    return (isinstance(atom, Lit) and isinstance(atom.value, (int, float)) and not isinstance(atom.value, bool)
            and math.isfinite(atom.value) and atom.value > 0)


def _scaled(mul: Eqn | None):
    """(x, c) when `mul` is `x * c` (either order) with c a positive literal and x of the product's type."""
    if mul is None or mul.prim is not P["mul"]:
        return None
    out = mul.outputs[0].type
    for x, c in (mul.inputs, mul.inputs[::-1]):
        if (isinstance(x, Var) and _positive(c) and isinstance(out, TensorType) and out.dtype.is_floating_point
                and x.type == out):
            return x, c
    return None


def _rewrite(eqns, made: dict) -> list:
    out = []
    for eqn in eqns:
        eqn = map_regions(eqn, lambda r: Region(r.params, _rewrite(r.eqns, made), r.results))
        found = _scaled(made.get(eqn.inputs[0])) if eqn.prim in _EXTREMA and isinstance(eqn.inputs[0], Var) else None
        if found is None:
            out.append(eqn)
            continue
        x, c = found
        (result,) = eqn.outputs
        unscaled = Var(result.type)
        out.append(attrs.evolve(eqn, inputs=(x,), outputs=(unscaled,)))
        out.append(Eqn(P["mul"], (unscaled, c), (result,), source=eqn.source))
    return out


def scaled_max(program: Program, config=None) -> Program:
    """`program` with each max/min of a positively scaled tile taken before the scaling."""
    made = {o: eqn for eqn in walk_eqns(program.eqns) for o in eqn.outputs}  # (nested regions' too)
    return attrs.evolve(program, eqns=_rewrite(program.eqns, made))
