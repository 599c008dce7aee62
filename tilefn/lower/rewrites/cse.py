"""Common-subexpression elimination: a pure equation equal to an earlier one in scope reuses its outputs.

Equal means the same primitive, the same inputs (Vars by identity, Lits by value and type) and
equal params. An outer region's values are visible inside nested loop bodies, never the reverse.
Loads are merged only within one region with no effectful equation between them (any store may
alias the loaded tensor, and a loop body runs again after its own stores).
"""
from __future__ import annotations

import attrs

from ...trace.ir import Eqn, Lit, Program, Region, Var, map_regions, regions
from ...trace.primitives import load_p
from .dce import has_effect


def _atom_key(atom):
    """Vars by identity; Lits by value, its Python type and repr (so 0.0 and -0.0 differ) and type."""
    if isinstance(atom, Lit):
        return ("lit", type(atom.value), repr(atom.value), atom.type)
    return atom


def _param_key(value):
    """A param value compared exactly: floats by repr (0.0 and -0.0 differ), tuples item by item."""
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, tuple):
        return tuple(_param_key(v) for v in value)
    return value


def _key(eqn: Eqn, epoch):
    """The table key of a mergeable equation, or None when it must not be merged."""
    if eqn.prim is load_p:
        scope = epoch
    elif not eqn.prim.effectful and not regions(eqn):
        scope = None
    else:
        return None
    params = tuple(sorted((name, _param_key(v)) for name, v in eqn.params.items()))
    key = (eqn.prim, scope, tuple(_atom_key(a) for a in eqn.inputs), params)
    try:
        hash(key)
    except TypeError:
        return None
    return key


class _Epoch:
    """A load scope: a fresh one per region and after every effect, compared by identity."""


def _rename(atoms, mapping) -> tuple:
    return tuple(mapping.get(a, a) if isinstance(a, Var) else a for a in atoms)


def _region(region: Region, table: dict, mapping: dict, hints: dict) -> Region:
    """`region` with its equations merged against `table` (a copy: its entries stay local)."""
    eqns = _eqns(region.eqns, dict(table), mapping, hints)
    return Region(region.params, eqns, _rename(region.results, mapping))


def _eqns(eqns, table: dict, mapping: dict, hints: dict) -> list:
    """Merge `eqns` in order; `table` maps keys to earlier outputs, `mapping` records the merges."""
    out, epoch = [], _Epoch()
    for eqn in eqns:
        eqn = attrs.evolve(eqn, inputs=_rename(eqn.inputs, mapping))
        eqn = map_regions(eqn, lambda region: _region(region, table, mapping, hints))
        key = _key(eqn, epoch)
        if key is not None and key in table:
            for old, new in zip(eqn.outputs, table[key]):
                mapping[old] = new
                if new not in hints and old in hints:
                    hints[new] = hints[old]
            continue
        if key is not None:
            table[key] = eqn.outputs
        elif has_effect(eqn):
            epoch = _Epoch()
        out.append(eqn)
    return out


def cse(program: Program, config=None) -> Program:
    """`program` with repeated pure computations computed once."""
    mapping: dict = {}
    hints = dict(program.hints)
    eqns = _eqns(program.eqns, {}, mapping, hints)
    return attrs.evolve(program, eqns=eqns, hints=hints)
