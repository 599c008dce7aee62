"""Online rescaling: a looped max and the looped sum of `exp(row - shift(max))` become one loop.

Softmax, log_softmax and logsumexp take a row's max `m`, a shift `c` (m itself, or
`where(isinf(m), 0, m)`) and then `s = sum(exp(a - c))`. Looped one after the other, the row is read
twice. Since exp(a - c_new) = exp(a - c_old) * exp(c_old - c_new), one loop can carry both: per
chunk, `m_new = max(m, max(chunk))`, `c_new = c(m_new)` and
`s = s * exp(c_old - c_new) + sum(exp(a_chunk - c_new))`; after the last chunk `m` and `s` are what
the two loops gave (FlashAttention's online softmax). The shift must be the max or a `where`
choosing between the max and a finite constant (`_follows_max`), so each partial sum stays within
what the two-pass form computes. Inside the loop an infinite shift counts as 0 and a partial sum of
0 stays 0 (no inf - inf or 0 * inf while the max is still -inf); after it, an infinite final shift
makes the sum NaN, as exp(inf - inf) makes the two-pass sum. A shift the program already keeps
finite (`where(isinf(m), K, m)`, logsumexp's; `_finite_already`) takes neither step. The shift may be read
through `max[:, None]` (VIEWS). Float32 terms are summed as exp2 (`_summed_terms`).

`plan(eqns, chunker)` finds the pairs in one grid-loop body; `fused_loop` builds one pair's loop.
"""
from __future__ import annotations

import attrs
import torch

from ...trace import primitives as p
from ...trace.ir import Eqn, Lit, Var, regions
from ...trace.primitives import P
from ...trace.types import PyScalarType, TensorType

LOG2E = 1.4426950408889634  # log2(e): exp(x) = exp2(x * LOG2E)
CHAIN_PRIMS = {P[name] for name in ("isinf", "isnan", "isfinite", "abs", "eq", "ne", "where", "logical_not",
                                    "logical_and", "logical_or")} | {p.convert_p, p.stop_gradient_p, p.expand_dims_p}
VIEWS = (p.stop_gradient_p, p.expand_dims_p)  # the same values: `max[:, None]` shifts as `max` does


@attrs.frozen
class Pair:
    """A looped max, the sum it shifts, and what the body computes from the max between them."""

    max_eqn: Eqn
    sum_eqn: Eqn
    later: tuple  # the non-row equations between them that use the max: moved after the fused loop
    chain: tuple  # those the shift is computed by: also computed per chunk inside the loop
    shift: Var  # the value subtracted from the row
    level: Var  # the shift before the views that make it (`_unviewed`): in the max's and the sum's shape
    finite: bool  # whether the chain already keeps the shift finite (`_finite_already`)
    base2: bool  # whether the sum's terms may be computed as exp2 (`_summed_terms`)


def _shift_of(sum_eqn, chunker, deps):
    """The shift `c` when the sum's input is exp(a - c) with `a` free of the max, else None."""
    produce = chunker.producers.get
    e = produce(sum_eqn.inputs[0])
    d = produce(e.inputs[0]) if e is not None and e.prim is P["exp"] else None
    if d is None or d.prim is not P["sub"]:
        return None
    a, c = d.inputs
    if isinstance(a, Var) and a in deps:
        return None
    b = produce(c) if isinstance(c, Var) and chunker.is_row(c) else None
    if b is not None and b.prim is p.broadcast_to_p:
        c = b.inputs[0]
    return c if isinstance(c, Var) and c in deps and not chunker.is_row(c) else None


def _chain_to(shift, later) -> tuple | None:
    """The equations of `later` that `shift` is computed by (body order), None if one is not a CHAIN_PRIM."""
    made_by = {o: e for e in later for o in e.outputs}
    needed, todo = set(), [shift]
    while todo:
        eqn = made_by.get(todo.pop())
        if eqn is not None and id(eqn) not in needed:
            if eqn.prim not in CHAIN_PRIMS:
                return None
            needed.add(id(eqn))
            todo += [a for a in eqn.inputs if isinstance(a, Var)]
    return tuple(e for e in later if id(e) in needed)


def _unviewed(shift, chain):
    """`shift` read through the VIEWS that make it (softmax's decompositions' `stop_gradient`, `max[:, None]`)."""
    made_by = {o: e for e in chain for o in e.outputs}
    while shift in made_by and made_by[shift].prim in VIEWS:
        shift = made_by[shift].inputs[0]
    return shift


def _follows_max(shift, max_out, chain) -> bool:
    """Whether `shift` is the max itself or where(cond, K, max) / where(cond, max, K) for a finite literal K
    (either read through a `stop_gradient`)."""
    shift = _unviewed(shift, chain)
    if shift is max_out:
        return True
    last = next((e for e in chain if shift in e.outputs), None)
    if last is None or last.prim is not P["where"]:
        return False
    _, a, b = last.inputs
    return any(x is max_out and isinstance(k, Lit) and abs(float(k.value)) != float("inf")
               for x, k in ((a, b), (b, a)))


def _finite_already(shift, max_out, chain) -> bool:
    """Whether `shift` is where(isinf(max), K, max) or where(isfinite(max), max, K) (K finite: `_follows_max`),
    never infinite."""
    made_by = {o: e for e in chain for o in e.outputs}
    last = made_by.get(_unviewed(shift, chain))
    if last is None or last.prim is not P["where"] or not isinstance(last.inputs[0], Var):
        return False
    test = made_by.get(last.inputs[0])
    if test is None or test.inputs[0] is not max_out:
        return False
    return (test.prim is P["isinf"] and last.inputs[2] is max_out) or \
        (test.prim is P["isfinite"] and last.inputs[1] is max_out)


def _pair_from(eqns, start, chunker):
    """The Pair of the max at eqns[start], or None where the body uses the max in another way."""
    max_eqn = eqns[start]
    deps, later = {max_eqn.outputs[0]}, []
    loaded = {e.inputs[0] for e in eqns if e.prim is p.load_p}
    for eqn in eqns[start + 1:]:
        if not any(isinstance(a, Var) and a in deps for a in eqn.inputs):
            continue
        if eqn.prim is p.reduce_sum_p and chunker.reduces_row(eqn):
            shift = _shift_of(eqn, chunker, deps)
            chain = _chain_to(shift, later) if shift is not None else None
            level = _unviewed(shift, chain) if chain is not None else None
            if chain is None or not _follows_max(shift, max_eqn.outputs[0], chain) or \
                    len({max_eqn.outputs[0].type, eqn.outputs[0].type, level.type}) != 1:
                return None
            finite = _finite_already(shift, max_eqn.outputs[0], chain)
            base2 = finite or level is max_eqn.outputs[0]
            return Pair(max_eqn, eqn, tuple(later), chain, shift, level, finite, base2)
        if regions(eqn) or eqn.prim in p.ATOMIC:
            return None
        if eqn.prim is p.store_p:  # a store of what the max gives: after the loop, unless the body reads it back
            if eqn.inputs[0] in loaded or any(chunker.is_row(a) for a in eqn.inputs[1:]):
                return None
            later.append(eqn)
        elif any(chunker.is_row(o) for o in eqn.outputs):
            deps.update(eqn.outputs)  # recomputed per chunk where needed
        elif eqn.outputs:
            deps.update(eqn.outputs)
            later.append(eqn)
        else:
            return None
    return None


def plan(eqns, chunker) -> dict:
    """{id(sum eqn): Pair} for each looped max whose sum can share its loop."""
    pairs = {}
    for i, eqn in enumerate(eqns):
        if eqn.prim is p.reduce_max_p and chunker.reduces_row(eqn) and eqn.outputs[0].type.dtype.is_floating_point \
                and eqn.inputs[0].type.dtype == eqn.outputs[0].type.dtype:
            pair = _pair_from(eqns, i, chunker)
            if pair is not None:
                pairs[id(pair.sum_eqn)] = pair
    return pairs


def skipped(pairs: dict) -> set:
    """ids of the equations a fused loop replaces at their own place (the max and what follows from it)."""
    return {id(e) for pair in pairs.values() for e in (pair.max_eqn, *pair.later)}


def _clone_chain(chain, mapping: dict, body: list) -> dict:
    """The chain computed again from `mapping`'s max into `body`; returns mapping with its values."""
    mapping = dict(mapping)
    for eqn in chain:
        outputs = tuple(Var(o.type) for o in eqn.outputs)
        body.append(attrs.evolve(eqn, inputs=tuple(mapping.get(a, a) if isinstance(a, Var) else a for a in eqn.inputs),
                                 outputs=outputs))
        mapping.update(zip(eqn.outputs, outputs))
    return mapping


def _binary(name, a, b, type_, body, source) -> Var:
    out = Var(type_)
    body.append(Eqn(P[name], (a, b), (out,), {}, source))
    return out


def fused_loop(chunker, pair: Pair, copied) -> list:
    """full(-inf), full(0) ; loop { m, s as the module docstring says } ; what follows from the final max."""
    m_out, s_out = pair.max_eqn.outputs[0], pair.sum_eqn.outputs[0]
    m_type, s_type, source = m_out.type, s_out.type, pair.sum_eqn.source
    bool_type = TensorType(s_type.shape, torch.bool)
    init_m, init_s, m_param, s_param = Var(m_type), Var(s_type), Var(m_type), Var(s_type)
    eqns = [Eqn(p.full_p, (), (init_m,), {"shape": m_type.shape, "value": float("-inf"), "dtype": m_type.dtype}, source),
            Eqn(p.full_p, (), (init_s,), {"shape": s_type.shape, "value": 0.0, "dtype": s_type.dtype}, source)]
    tile_var = chunker.new_tile()

    def build(body, mapping):
        chunk = chunker.materialize(pair.max_eqn.inputs[0], body, mapping, tile_var)
        partial_m = Var(m_type)
        body.append(attrs.evolve(pair.max_eqn, inputs=(chunk,), outputs=(partial_m,), site=copied(pair.max_eqn)))
        m_new = _binary("maximum", m_param, partial_m, m_type, body, source)
        old = _clone_chain(pair.chain, {m_out: m_param}, body)
        new = _clone_chain(pair.chain, {m_out: m_new}, body)
        c_old, c_new, shifted = old[pair.level], new[pair.level], new[pair.shift]
        if not pair.finite:
            c_old, c_new = _finite(c_old, body, source), _finite(c_new, body, source)
            shifted = c_new if pair.shift.type == pair.level.type else _finite(shifted, body, source)  # (same values)
        mapping[pair.shift] = shifted  # the row's chunk is shifted by the new shift
        exps = _summed_terms(chunker, pair, body, mapping, tile_var)
        partial_s = Var(s_type)
        body.append(attrs.evolve(pair.sum_eqn, inputs=(exps,), outputs=(partial_s,), site=copied(pair.sum_eqn)))
        step = _binary("sub", c_old, c_new, m_type, body, source)
        factor = _unary("exp", step, m_type, body, source)
        scaled = _binary("mul", s_param, factor, s_type, body, source)
        empty = _binary("eq", s_param, Lit(0.0, PyScalarType(float)), bool_type, body, source)
        kept = Var(s_type)
        body.append(Eqn(P["where"], (empty, Lit(0.0, PyScalarType(float)), scaled), (kept,), {}, source))
        return [m_new, _binary("add", kept, partial_s, s_type, body, source)]

    loop = chunker.loop(build, tile_var, pair.sum_eqn, carries=[(init_m, m_param), (init_s, s_param)])
    if pair.finite:
        return eqns + [attrs.evolve(loop, outputs=(m_out, s_out)), *pair.later]
    summed, after = Var(s_type), list(pair.later)
    infinite = _unary("isinf", pair.level, bool_type, after, source)
    after.append(Eqn(P["where"], (infinite, Lit(float("nan"), PyScalarType(float)), summed), (s_out,), {}, source))
    return eqns + [attrs.evolve(loop, outputs=(m_out, summed)), *after]


def _summed_terms(chunker, pair: Pair, body, mapping, tile_var) -> Var:
    """The chunk of the summed exp(a - c); in float32, where the shift follows the max exactly (`Pair.base2`),
    as exp2((a - c) * log2(e)). That is how the GPU computes exp, less the steps that keep results below 2**-126
    (Triton's exp2 flushes them to 0): a sum holding the max's term exp(0) = 1 (or inf) loses nothing by them."""
    terms = pair.sum_eqn.inputs[0]
    exp = chunker.producers[terms]
    if not pair.base2 or exp.outputs[0].type.dtype != torch.float32:
        return chunker.materialize(terms, body, mapping, tile_var)
    diff = chunker.materialize(exp.inputs[0], body, mapping, tile_var)
    scaled = _binary("mul", diff, Lit(LOG2E, PyScalarType(float)), diff.type, body, exp.source)
    return _unary("exp2", scaled, diff.type, body, exp.source)


def _unary(name, a, type_, body, source) -> Var:
    out = Var(type_)
    body.append(Eqn(P[name], (a,), (out,), {}, source))
    return out


def _finite(c, body, source) -> Var:
    """where(isinf(c), 0, c): the shift used inside the loop."""
    out = Var(c.type)
    infinite = _unary("isinf", c, TensorType(c.type.shape, torch.bool), body, source)
    body.append(Eqn(P["where"], (infinite, Lit(0.0, PyScalarType(float)), c), (out,), {}, source))
    return out
