"""Online-softmax loops made two passes before transposing (the opposite of `lower/rewrites/online_rescale`).

A loop carrying a running max `m` (`m_new = maximum(m, t)`, `t` free of the carries) and carries that are
rescaled by `alpha = exp(m - m_new)` (or exp2) before terms scaled by `exp(-m_new)` are added to them
(`l = l * alpha + sum(exp(s - m_new))`, `acc = addmm(acc * alpha, exp(s - m_new), v)`) gives, from zero
inits, what two loops give: the first the max alone (`m = maximum(m, t)`), the second plain sums of the
`exp(s - m)` terms with the final `m`. What the kernel computes from those sums (`acc / l`) does not depend
on the shift `m` (softmax's shift invariance), so the second loop reads `m` through `stop_gradient`,
exactly: it carries only accumulators, and `kernel.transpose_loop` gives FlashAttention-2's backward
(`dS = P * (dP - rowsum(dO * O))`, dQ, dK, dV by dots). A loop that differs from the pattern in any way is
left as it is (and refused by the transpose, at its line).
"""
from __future__ import annotations

import attrs

from ..lower.rewrites.dce import sweep
from ..trace import primitives as p
from ..trace.ir import Eqn, Lit, Region, Var, map_regions, regions, substitute, walk_eqns
from .kernel import fresh_region

VIEWS = {p.expand_dims_p, p.squeeze_p, p.broadcast_to_p, p.reshape_p, p.permute_p}
LINEAR = VIEWS | {p.convert_p, p.reduce_sum_p, p.P["neg"]}  # of a scaled value: scaled
BASES = (p.P["exp"], p.P["exp2"])
# value classes inside the loop body (anything unlisted is free of the max)
MAX, OLD, SHIFTED, STEP, ALPHA, SCALED = "max", "old", "shifted", "step", "alpha", "scaled"


@attrs.frozen
class OnlineLoop:
    """A matched loop: which carry is the max, its update, and each rescaling `mul` (-> the carry it scales)."""

    max_carry: int
    update: Eqn
    rescales: dict  # id(mul eqn) -> carry position


def two_pass(kernel: Eqn, sites, copies: dict) -> Eqn:
    """`kernel` with each online-softmax loop in it replaced by its two-pass form."""
    def rewrite(region: Region) -> Region:
        eqns, made = [], {}
        for eqn in region.eqns:
            eqn = map_regions(eqn, rewrite)
            found = match(eqn, made) if eqn.prim is p.loop_p and not eqn.params["grid"] else None
            eqns += [eqn] if found is None else split(eqn, found, sites, copies)
            made.update((o, eqn) for o in eqn.outputs)
        return Region(region.params, eqns, region.results)

    return map_regions(kernel, rewrite)


def _max_update(region: Region, n_tiles: int):
    """(carry position, its `maximum` equation) where one carry's result is maximum(carry, t), else None."""
    made = {o: e for e in region.eqns for o in e.outputs}
    found = []
    for i, result in enumerate(region.results):
        eqn = made.get(result)
        if eqn is not None and eqn.prim is p.P["maximum"] and region.params[n_tiles + i] in eqn.inputs:
            found.append((i, eqn))
    return found[0] if len(found) == 1 else None


def _classify(eqn: Eqn, kinds: list, carry_of, base) -> tuple | None:
    """(class of `eqn`'s output, carry it accumulates into or None, base) from its inputs' classes, or None
    where the equation uses the max in a way the two-pass form does not keep."""
    prim, ins = eqn.prim, eqn.inputs
    if prim in VIEWS and kinds[0] in (MAX, ALPHA, SCALED):
        return kinds[0], None, base
    if prim is p.P["sub"] and kinds[1] == MAX and kinds[0] in (None, OLD):
        return (SHIFTED if kinds[0] is None else STEP), None, base
    if prim in BASES and kinds[0] in (SHIFTED, STEP) and base in (None, prim):
        return (SCALED if kinds[0] == SHIFTED else ALPHA), None, prim
    if prim is p.P["mul"] and sorted(kinds, key=str) == [ALPHA, "param"]:
        return "carry", carry_of[ins[kinds.index("param")]], base
    if prim in LINEAR and kinds[0] == SCALED and (prim is not p.convert_p or eqn.params["dtype"].is_floating_point):
        return SCALED, None, base
    if prim in (p.P["mul"], p.dot_p) and len(ins) == 2 and SCALED in kinds and None in kinds:
        return SCALED, None, base  # (times a value free of the max)
    if prim is p.P["div"] and kinds == [SCALED, None]:
        return SCALED, None, base
    if prim is p.P["where"] and kinds[0] is None and SCALED in kinds and _zero_other(ins, kinds):
        return SCALED, None, base
    accumulating = {p.P["add"]: ((0, 1), (1, 0)), p.P["sub"]: ((0, 1),), p.dot_p: ((2, 0), (2, 1))}
    for acc, term in accumulating.get(prim, ()):
        rest = [k for i, k in enumerate(kinds) if i not in (acc, term)]
        if kinds[acc] == "carry" and kinds[term] == SCALED and all(k is None for k in rest):
            return "carry", carry_of.get(ins[acc]), base
    return None


def _zero_other(ins, kinds) -> bool:
    """A `where` choosing between a scaled value and the literal 0."""
    other = ins[2] if kinds[1] == SCALED else ins[1]
    return isinstance(other, Lit) and other.value == 0 and SCALED in (kinds[1], kinds[2])


def match(loop: Eqn, made: dict) -> OnlineLoop | None:
    """The online-softmax structure of `loop` (the module docstring), or None. `made`: Var -> the equation
    of the enclosing region that makes it (the carries' inits)."""
    region = loop.params["region"]
    n_tiles = len(region.params) - len(region.results)
    found = _max_update(region, n_tiles)
    if found is None or len(region.results) < 2:
        return None
    m, update = found
    carries = region.params[n_tiles:]
    kind = {carries[m]: OLD, update.outputs[0]: MAX, **{c: "param" for i, c in enumerate(carries) if i != m}}
    carry_of = {c: i for i, c in enumerate(carries)}
    base, rescales = None, {}
    t = next((x for x in update.inputs if x is not carries[m]), carries[m])
    if isinstance(t, Var) and t in kind:
        return None  # (t is a carry)
    for eqn in region.eqns:
        if eqn is update:
            continue
        kinds = [kind.get(x) if isinstance(x, Var) else None for x in eqn.inputs]
        inner = [kind.get(x) for r in regions(eqn) for e in walk_eqns(r.eqns) for x in e.inputs if isinstance(x, Var)]
        if all(k is None for k in kinds + inner):
            continue
        got = None if inner and any(k is not None for k in inner) else _classify(eqn, kinds, carry_of, base)
        if got is None:
            return None
        cls, carry, base = got
        if cls == "carry":
            if "param" in kinds:
                if carry in rescales.values():
                    return None
                rescales[id(eqn)] = carry
            carry_of[eqn.outputs[0]] = carry
        kind.update((o, cls) for o in eqn.outputs)
    others = [i for i in range(len(carries)) if i != m]
    if sorted(rescales.values()) != others or any(carry_of.get(region.results[i]) != i for i in others):
        return None
    inits = loop.inputs[len(loop.inputs) - len(carries):]
    if not all(_is_zeros(inits[i], made) for i in others):
        return None
    return OnlineLoop(m, update, rescales)


def _is_zeros(init, made) -> bool:
    eqn = made.get(init)
    return eqn is not None and eqn.prim is p.full_p and eqn.params["value"] == 0


def split(loop: Eqn, found: OnlineLoop, sites, copies: dict) -> list:
    """[the max loop, stop_gradient of its result, the loop of the other carries as plain sums]: the update,
    the rescales and alpha are left out of the sums loop (nothing reads them once the max is the shift)."""
    region = loop.params["region"]
    n_carries = len(region.results)
    n_tiles = len(region.params) - n_carries
    tiles, carries = region.params[:n_tiles], region.params[n_tiles:]
    bounds, inits = loop.inputs[:len(loop.inputs) - n_carries], loop.inputs[len(loop.inputs) - n_carries:]
    m, m_new = found.max_carry, found.update.outputs[0]
    max_region = fresh_region(Region((*tiles, carries[m]), sweep(region.eqns, {m_new}), (m_new,)), sites, copies)
    m_out = loop.outputs[m]
    max_loop = Eqn(p.loop_p, (*bounds, inits[m]), (m_out,), loop.params.set("region", max_region), loop.source,
                   f"vjp_loop_{next(sites)}")
    shift = Var(m_new.type)
    copies[shift] = m_new
    stop = Eqn(p.stop_gradient_p, (m_out,), (shift,), {}, found.update.source, f"vjp_stop_gradient_{next(sites)}")
    mapping = {e.outputs[0]: carries[found.rescales[id(e)]] for e in region.eqns if id(e) in found.rescales}
    mapping[m_new] = shift
    keep = [i for i in range(n_carries) if i != m]
    sums = substitute(Region((*tiles, *(carries[i] for i in keep)), region.eqns,
                             tuple(region.results[i] for i in keep)), mapping)
    sums = Region(sums.params, sweep(sums.eqns, set(sums.results)), sums.results)
    sums_loop = attrs.evolve(loop, inputs=(*bounds, *(inits[i] for i in keep)),
                             outputs=tuple(loop.outputs[i] for i in keep), params=loop.params.set("region", sums))
    return [max_loop, stop, sums_loop]
