"""The kernel transposed: each top-level tile loop becomes one backward loop over the same tiles that
recomputes the forward for its tile (loads and pointwise math, no stores), then walks the equations in
reverse, turning output cotangents into input cotangents (`rules.TRANSPOSE`, `memory`).

Inner loops whose carries are accumulators (`acc = acc + f(...)`, `acc = addmm(acc, a, b)`) run again
in the backward: every iteration's body gets the cotangent of the loop's result (an accumulator passes
its cotangent through unchanged, so the order of the iterations does not matter), and values from
outside the loop that the body reads get their cotangents summed in carries of the backward loop.
"""
from __future__ import annotations

import attrs

from ..errors import UnsupportedOp
from ..trace import primitives as p
from ..trace.ir import Eqn, Region, Var, map_regions, walk_eqns
from ..trace.types import HostType
from .builder import Builder, accumulate
from .memory import Buffers, cotangent_load, transpose_load, written_value
from .rules import TRANSPOSE, refuse

# transposed here and in memory.py / program.py rather than by a rule of `rules.TRANSPOSE`
STRUCTURAL = frozenset({p.kernel_p, p.loop_p, p.load_p, p.store_p, p.P["atomic_add"], p.host_p})
ACCUMULATE = {p.P["add"]: (0, 1), p.P["sub"]: (0,), p.dot_p: (2,)}  # prim -> inputs an accumulator may be


def backward_kernel(kernel: Eqn, buffers: Buffers, sites, copies: dict) -> Eqn:
    """The backward kernel equation of forward kernel `kernel` (`copies` gets each copied Var's original)."""
    loops = []
    for loop in kernel.params["region"].eqns:
        if loop.prim is not p.loop_p:
            raise refuse(loop, " at the kernel's top level")
        region = loop.params["region"]
        body = Builder(sites, loop.source, copies, loop)
        backward_body(body, region.eqns, {}, tuple(region.params), buffers)
        loops.append(attrs.evolve(loop, params=loop.params.set("region", Region(region.params, body.eqns, ()))))
    region = Region((), loops)
    operands, outside = [], set(kernel.inputs)  # (tensors, and the forward's runtime floats)
    for eqn in walk_eqns(region.eqns):
        for x in eqn.inputs:
            if isinstance(x, Var) and (isinstance(x.type, HostType) or x in outside) and x not in operands:
                operands.append(x)
    return Eqn(p.kernel_p, operands, (), {"region": region}, kernel.source, kernel.site)


def without_writes(eqn: Eqn) -> Eqn:
    """`eqn` for recomputing the forward: stores and atomics left out of the regions it holds."""
    def strip(region: Region) -> Region:
        return Region(region.params, [without_writes(e) for e in region.eqns if e.prim not in p.WRITES],
                      region.results)

    return map_regions(eqn, strip)


def backward_body(b: Builder, eqns, env: dict, tiles: tuple, buffers: Buffers, skip=frozenset()) -> None:
    """Recompute `eqns` (but `skip`) into `b`, then emit their transpose: `env` maps values to cotangents."""
    for eqn in eqns:
        if eqn.prim not in p.WRITES and id(eqn) not in skip:
            b.add_eqn(without_writes(eqn))
    for eqn in eqns:
        if eqn.prim in p.WRITES and eqn.inputs[0] in buffers.cotangents:
            b.source = eqn.source
            if eqn.prim is not p.store_p and eqn.prim is not p.P["atomic_add"]:
                raise refuse(eqn, " into a tensor being differentiated")
            accumulate(b, env, written_value(eqn), cotangent_load(b, eqn, buffers))
    for eqn in reversed(eqns):
        cts = tuple(env.get(o) for o in eqn.outputs)
        if eqn.prim in p.WRITES or (all(ct is None for ct in cts) and not _writes_cotangent(eqn, buffers)):
            continue
        b.source = eqn.source
        if eqn.prim is p.load_p:
            transpose_load(b, eqn, cts[0], tiles, buffers, env)
        elif eqn.prim is p.loop_p:
            transpose_loop(b, eqn, cts, env, tiles, buffers)
        elif eqn.prim in TRANSPOSE:
            for x, ct in zip(eqn.inputs, TRANSPOSE[eqn.prim](b, eqn, cts)):
                accumulate(b, env, x, ct)
        else:
            raise refuse(eqn)


def _writes_cotangent(eqn: Eqn, buffers: Buffers) -> bool:
    """Whether a loop's body writes an output that has a cotangent (its backward runs for that alone)."""
    return eqn.prim is p.loop_p and any(e.prim in p.WRITES and e.inputs[0] in buffers.cotangents
                                        for e in walk_eqns(eqn.params["region"].eqns))


def fresh_region(region: Region, sites, copies: dict) -> Region:
    """A copy of `region` with new variables for everything it binds and new site ids (a loop run again
    beside itself: each copy is a knob site of its own)."""
    mapping = {v: Var(v.type) for v in region.params}

    def copy(r: Region) -> Region:
        for v in r.params:
            mapping.setdefault(v, Var(v.type))
        eqns = []
        for eqn in r.eqns:
            for v in eqn.outputs:
                mapping[v] = Var(v.type)
            inputs = tuple(mapping.get(a, a) if isinstance(a, Var) else a for a in eqn.inputs)
            eqns.append(attrs.evolve(map_regions(eqn, copy), inputs=inputs, outputs=tuple(mapping[v] for v in eqn.outputs),
                                     site=f"vjp_{eqn.prim.name}_{next(sites)}"))
        return Region(tuple(mapping[v] for v in r.params), eqns,
                      tuple(mapping.get(v, v) if isinstance(v, Var) else v for v in r.results))

    copied = copy(region)
    copies.update((new, old) for old, new in mapping.items())
    return copied


def accumulator_chain(loop: Eqn, region: Region, carry: int) -> list:
    """The equations that update carry `carry` (each adds to it; nothing else reads it), or a clear error."""
    n_tiles = len(region.params) - len(region.results)
    current, chain = region.params[n_tiles + carry], []
    uses = lambda v: [e for e in walk_eqns(region.eqns) if any(a is v for a in e.inputs)]  # noqa: E731
    while current is not region.results[carry]:
        users = uses(current)
        user = users[0] if len(users) == 1 else None
        if user is None or user not in region.eqns or not any(user.inputs[i] is current
                                                              for i in ACCUMULATE.get(user.prim, ())):
            raise UnsupportedOp(
                "tfn.vjp: this loop's carry is not an accumulator (`acc = acc + f(...)`, `acc = torch.addmm(acc, "
                "a, b)`, updated once per iteration and read by nothing else); the backward of other carries "
                "(a running max, an online softmax) is not derived: split the loop, or give the kernel a "
                "backward with def_vjp", source=(users[0] if users else loop).source)
        chain.append(user)
        current = user.outputs[0]
    if uses(current):
        raise UnsupportedOp("tfn.vjp: a loop carry's new value is read inside the loop body besides being "
                            "carried; only accumulators are differentiated", source=loop.source)
    return chain


def transpose_loop(b: Builder, loop: Eqn, cts: tuple, env: dict, tiles: tuple, buffers: Buffers) -> None:
    """An inner loop of accumulators, run again: its body's transpose with each result's cotangent."""
    if loop.params.get("grid"):
        raise refuse(loop, " nested in a tile loop as a grid loop")
    region = fresh_region(loop.params["region"], b.sites, b.copies)
    n_carries = len(region.results)
    n_tiles = len(region.params) - n_carries
    chains = [e for i in range(n_carries) for e in accumulator_chain(loop, region, i)]
    body = b.child()
    inner: dict = {}
    for result, ct in zip(region.results, cts):
        if ct is not None:
            inner[result] = ct
    loop_tiles = tuple(region.params[:n_tiles])
    backward_body(body, region.eqns, inner, tiles + loop_tiles, buffers, skip=frozenset(map(id, chains)))
    bound = {v for e in walk_eqns(region.eqns) for v in e.outputs} | set(region.params)
    outer = [v for v in inner if v not in bound and v not in region.results]
    params = [Var(inner[v].type) for v in outer]
    results = [body.add(c, inner[v]) for c, v in zip(params, outer)]
    inits = [b.zeros(v.type.shape, inner[v].type.dtype) for v in outer]
    outputs = tuple(Var(c.type) for c in params)
    bounds = loop.inputs[:len(loop.inputs) - n_carries]
    new_region = Region(loop_tiles + tuple(params), body.eqns, results)
    b.add_eqn(Eqn(p.loop_p, (*bounds, *inits), outputs, loop.params.set("region", new_region), loop.source,
                  f"vjp_loop_{next(b.sites)}"))
    for v, out in zip(outer, outputs):
        accumulate(b, env, v, out)
    for init, ct in zip(loop.inputs[len(bounds):], cts):
        accumulate(b, env, init, ct)
