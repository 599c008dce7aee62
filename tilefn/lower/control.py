"""Scalar control flow: a `cond` becomes a Triton `if`/`else`, a `while` a Triton `while` on a carried flag.

`body(region)` emits a region's equations (the kernel writer's, so nested loops and conds work).
Each output gets a name assigned at the end of both branches (Triton merges names defined in both);
a while's condition and carries are names the loop reassigns at the end of its body.
"""
from __future__ import annotations


def _assign(em, names, exprs) -> None:
    """`names = exprs`, at once when one of them reads another (a swap)."""
    changed = [(n, e) for n, e in zip(names, exprs) if n != e]
    if len(changed) > 1 and {n for n, _ in changed} & {e for _, e in changed}:
        em.emit(", ".join(n for n, _ in changed) + " = " + ", ".join(e for _, e in changed))
    else:
        for n, e in changed:
            em.emit(f"{n} = {e}")


def emit_cond(em, eqn, body) -> None:
    names = [em.fresh(em.hints.get(out, "v")) for out in eqn.outputs]
    em.emit(f"if {em(eqn.inputs[0])}:")
    for key in ("region", "orelse"):
        if key == "orelse":
            em.emit("else:")
        em.depth += 1
        start = len(em.lines)
        region = eqn.params[key]
        body(region)
        _assign(em, names, [em(r) for r in region.results])
        if len(em.lines) == start:
            em.emit("pass")
        em.depth -= 1
    for out, name in zip(eqn.outputs, names):
        em.bind(out, name)


def emit_while(em, eqn, body) -> None:
    region = eqn.params["region"]
    flag = em.fresh("while_cond")
    names = [em.fresh(em.hints.get(out, "carry")) for out in eqn.outputs]
    _assign(em, [flag, *names], [em(a) for a in eqn.inputs])
    for param, out, name in zip(region.params, eqn.outputs, names):
        em.bind(param, name)
        em.bind(out, name)
    em.emit(f"while {flag}:")
    em.depth += 1
    start = len(em.lines)
    body(region)
    _assign(em, [flag, *names], [em(r) for r in region.results])
    if len(em.lines) == start:
        em.emit("pass")
    em.depth -= 1
