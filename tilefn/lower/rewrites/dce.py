"""Dead-code elimination: drop pure equations, and unneeded loop carries, whose results nobody uses.

Loads count as pure here (dropping an unused load is safe); stores, host calls, kernels, unknown
primitives and loops, conds and whiles whose bodies hold any of those are kept. A loop's carry is
kept when its output is used after the loop or its parameter feeds anything kept inside the body;
a cond keeps the outputs used after it; a while keeps all its carries.
"""
from __future__ import annotations

import attrs

from ...rule_table import RuleTable
from ...trace.ir import Eqn, Program, Region, Var, regions
from ...trace.primitives import cond_p, load_p, loop_p, while_p

EFFECTS = RuleTable("effect rule")  # Primitive -> eqn -> bool, where its `effectful` flag isn't the answer


def has_effect(eqn: Eqn) -> bool:
    """Whether `eqn` must run even when its outputs are unused."""
    rule = EFFECTS.get(eqn.prim)
    return eqn.prim.effectful if rule is None else rule(eqn)


EFFECTS.add(load_p, lambda eqn: False)  # an unused load may be dropped


@EFFECTS.register(loop_p, cond_p, while_p)
def _body_has_effect(eqn: Eqn) -> bool:
    return any(has_effect(e) for region in regions(eqn) for e in region.eqns)


def _vars(atoms) -> set:
    """The Vars among `atoms`."""
    return {a for a in atoms if isinstance(a, Var)}


def sweep(eqns, live: set) -> list:
    """The equations of `eqns` needed for `live` (or for effects); `live` becomes what they need."""
    kept = []
    for eqn in reversed(list(eqns)):
        if eqn.prim is loop_p:
            eqn = _sweep_loop(eqn, live)
        elif eqn.prim is cond_p:
            eqn = _sweep_cond(eqn, live)
        elif "region" in eqn.params:
            eqn = _sweep_nested(eqn, live)
        elif has_effect(eqn) or any(o in live for o in eqn.outputs):
            live.update(_vars(eqn.inputs))
        else:
            eqn = None
        if eqn is not None:
            kept.append(eqn)
    return kept[::-1]


def _sweep_nested(eqn: Eqn, live: set) -> Eqn:
    """A non-loop equation with a region (the kernel): kept whole, its body swept."""
    region = eqn.params["region"]
    inner = _vars(region.results)
    body = sweep(region.eqns, inner)
    live.update(inner - set(region.params), _vars(eqn.inputs))
    return attrs.evolve(eqn, params=eqn.params.set("region", Region(region.params, body, region.results)))


def _sweep_cond(eqn: Eqn, live: set) -> Eqn | None:
    """A cond with only the outputs used after it, or None when it is dead."""
    keep = [j for j, out in enumerate(eqn.outputs) if out in live]
    params = eqn.params
    for key in ("region", "orelse"):
        region = params[key]
        inner = _vars(region.results[j] for j in keep)
        body = sweep(region.eqns, inner)
        live.update(inner)
        params = params.set(key, Region((), body, tuple(region.results[j] for j in keep)))
    if not keep and not _body_has_effect(attrs.evolve(eqn, params=params)):
        return None
    live.update(_vars(eqn.inputs))
    return attrs.evolve(eqn, outputs=tuple(eqn.outputs[j] for j in keep), params=params)


def _sweep_loop(eqn: Eqn, live: set) -> Eqn | None:
    """A loop with only its needed carries, or None when it is dead."""
    region, n = eqn.params["region"], len(eqn.params["dims"])
    carries = region.params[n:]
    needed = {j for j, out in enumerate(eqn.outputs) if out in live}
    while True:
        inner = _vars(region.results[j] for j in needed)
        body = sweep(region.eqns, inner)
        more = {j for j, p in enumerate(carries) if p in inner} - needed
        if not more:
            break
        needed |= more
    if not needed and not any(has_effect(e) for e in body):
        return None
    keep = sorted(needed)
    inputs = tuple(eqn.inputs[:2 * n]) + tuple(eqn.inputs[2 * n + j] for j in keep)
    params = tuple(region.params[:n]) + tuple(carries[j] for j in keep)
    new_region = Region(params, body, tuple(region.results[j] for j in keep))
    live.update(inner - set(region.params), _vars(inputs))
    return attrs.evolve(eqn, inputs=inputs, outputs=tuple(eqn.outputs[j] for j in keep),
                        params=eqn.params.set("region", new_region))


def _output_vars(outputs) -> set:
    """The Vars among a Program's outputs (a Var, Lit, None or a nested tuple)."""
    if isinstance(outputs, tuple):
        return set().union(*map(_output_vars, outputs)) if outputs else set()
    return {outputs} if isinstance(outputs, Var) else set()


def dce(program: Program, config=None) -> Program:
    """`program` without the equations (and loop carries) that nothing observable needs."""
    eqns = sweep(program.eqns, _output_vars(program.outputs))
    return attrs.evolve(program, eqns=eqns)
