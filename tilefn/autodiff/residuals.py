"""Residuals: a derived backward split into a forward that also stores small per-row values (a row's max
and sum of exp, a norm's mean and rstd) and a backward that loads them instead of recomputing them.

The derived backward (`kernel.backward_body`) recomputes the forward for its tile, so a row reduction's
backward reads each row twice: once for its statistics, once for the gradient. A *residual* is a value of
the backward's body at a grid loop's top level (for a chunked grid, `chunks.py`, its chunk loop's top
level: the same tiles) that is one of the forward's own values there (so no cotangent reaches it), whose
type is the grid tiles' axes with every other axis of size 1 or absent, that the forward computed from a
larger value (it follows a reduction over the row, or an inner loop: a matmul's accumulator), and that
cotangent code reads, or an equation whose result is larger (the frontier: loaded instead, the reductions
before it are dead and DCE drops them). Residuals the backward from residuals does not read after all are
not saved.

The forward gets one buffer per residual (its dtype, the grid axes' full extents, allocated before the
kernel), stored at the grid tiles in its loop; the backward one input per residual, loaded there. The
buffers are indexed by element, not by tile, so the two kernels' Configs may size blocks differently.
No split (no residuals: the backward recomputes) where a grid loop has a `tl.grid` dimension or a
symbolic extent, where `two_pass` rewrites an online-softmax loop (the backward's loops are not the
forward's), or where nothing qualifies.
"""
from __future__ import annotations

import itertools

import attrs

from ..lower.rewrites.dce import dce
from ..trace import primitives as p
from ..trace.ir import Eqn, Program, Region, Var, regions, walk_eqns
from ..trace.sizes import is_symbolic
from ..trace.types import HostType, TensorType, TileDim
from .builder import Builder
from .host import buffer_eqn, contiguous
from .program import output_leaves, vjp_program
from .two_pass import two_pass


@attrs.frozen
class Residual:
    """A value the forward stores for the backward: top-level loop `loop`'s `var`, into a buffer of
    `shape` (the extents of the grid tiles `tiles`, in the order `var`'s axes name them)."""

    loop: int
    var: Var
    tiles: tuple
    shape: tuple


def find_residuals(forward: Program) -> tuple:
    """The residuals of `forward`'s derived backward (for cotangents typed as its outputs), in loop and
    program order; () where the backward is not split."""
    if forward.kernel is None or _two_passed(forward.kernel) or \
            all(e.prim is not p.loop_p or _grid_tiles(e) is None for e in forward.kernel.params["region"].eqns):
        return ()
    types = [v.type for v in output_leaves(forward.outputs)]
    copies: dict = {}
    backward = vjp_program(forward, types, [f"ct{i}" for i in range(len(types))], copies=copies)
    found = _candidates(forward.kernel, backward.kernel, origin(copies))
    if not found:
        return ()
    buffers = [Var(_buffer_type(r, forward)) for r in found]
    loaded = loading_backward(backward, copies, found, buffers)
    read = {x for e in walk_eqns(loaded.kernel.params["region"].eqns) for x in e.inputs}
    return tuple(r for r, buf in zip(found, buffers) if buf in read)


def origin(copies: dict):
    """Var -> the forward Var it copies (itself if none)."""
    def of(v):
        while v in copies:
            v = copies[v]
        return v
    return of


def saving_forward(forward: Program, found: tuple) -> Program:
    """`forward` also storing each residual; it returns `(its outputs, (residual buffers...))`."""
    allocs = [buffer_eqn(_buffer_type(r, forward), r.var.type.dtype, zeroed=False) for r in found]
    buffers = [a.outputs[0] for a in allocs]
    loops = list(forward.kernel.params["region"].eqns)
    sites = itertools.count()
    for r, buf in zip(found, buffers):
        loop = loops[r.loop]
        region = loop.params["region"]
        stores = _store(r, buf, loop.source, sites)
        loops[r.loop] = attrs.evolve(loop, params=loop.params.set(
            "region", Region(region.params, [*region.eqns, *stores], region.results)))
    kernel = forward.kernel
    kernel = attrs.evolve(kernel, inputs=(*kernel.inputs, *buffers),
                          params=kernel.params.set("region", Region((), loops)))
    at = list(forward.eqns).index(forward.kernel)
    eqns = [*forward.eqns[:at], *allocs, kernel, *forward.eqns[at + 1:]]
    hints = {**forward.hints, **{buf: f"saved_{forward.hints.get(r.var, f'residual{i}')}"
                                 for i, (r, buf) in enumerate(zip(found, buffers))}}
    return attrs.evolve(forward, name=f"{forward.name}_fwd", eqns=eqns, outputs=(forward.outputs, tuple(buffers)),
                        hints=hints)


def loading_backward(backward: Program, copies: dict, found: tuple, buffers: list) -> Program:
    """`backward` (transposed from the same forward, its copied Vars in `copies`) loading each residual from
    its buffer (a Var the caller makes an input) instead of recomputing it, dead code dropped."""
    kernel = _loading(backward.kernel, found, buffers, origin(copies))
    return dce(attrs.evolve(backward, eqns=[kernel if e is backward.kernel else e for e in backward.eqns]))


def _two_passed(kernel: Eqn) -> bool:
    """Whether `two_pass` rewrites an online-softmax loop of `kernel` (it adds a loop)."""
    count = lambda k: sum(e.prim is p.loop_p for e in walk_eqns(k.params["region"].eqns))  # noqa: E731
    return count(two_pass(kernel, itertools.count(), {})) != count(kernel)


def _grid_tiles(loop: Eqn) -> tuple | None:
    """A top-level loop's tiles where every dimension is a tile over a static range, else None."""
    dims = loop.params["dims"]
    ends = loop.inputs[1::2]  # (begin, end per dimension)
    if any(kind != "tile" for kind, _ in dims) or len(loop.inputs) != 2 * len(dims) or \
            not all(isinstance(getattr(e, "value", None), int) and not is_symbolic(e.value) for e in ends):
        return None
    return tuple(loop.params["region"].params[:len(dims)])


def _body(loop: Eqn, tiles: tuple, of) -> Region | None:
    """The backward loop's region whose top level holds (copies of, `of`) the forward's tile values: its own
    body, or the chunk loop's (`chunks.py`: the same tiles, regrouped into programs)."""
    region, tiles = loop.params["region"], set(tiles)
    if {of(t) for t in region.params[:len(tiles)]} == tiles:
        return region
    inner = [e for e in region.eqns if e.prim is p.loop_p and e.params.get("chunk")]
    if len(inner) == 1 and {of(t) for t in inner[0].params["region"].params[:len(tiles)]} == tiles:
        return inner[0].params["region"]
    return None


def _row_axes(var, tiles: tuple) -> tuple | None:
    """The grid tiles a per-row value's axes name, in order (every tile once, other axes of size 1), else None."""
    if not isinstance(var, Var) or not isinstance(var.type, TensorType):
        return None
    by_dim = {t.type.dim: t for t in tiles}
    named = []
    for d in var.type.shape:
        if isinstance(d, TileDim) and d in by_dim and by_dim[d] not in named:
            named.append(by_dim[d])
        elif d != 1:
            return None
    return tuple(named) if len(named) == len(tiles) else None


def _larger(x, tiles: tuple) -> bool:
    """Whether an operand has an axis of more than one element that is none of the grid tiles'."""
    dims = {t.type.dim for t in tiles}
    return isinstance(x, Var) and isinstance(x.type, TensorType) and \
        any(d != 1 and d not in dims for d in x.type.shape)


def _reduced(region: Region, tiles: tuple) -> set:
    """The forward body's top-level per-row values computed (transitively) from larger values."""
    reduced = set()
    for eqn in region.eqns:
        rows = [o for o in eqn.outputs if _row_axes(o, tiles) is not None]
        if eqn.prim is not p.load_p and rows and (regions(eqn) or any(
                x in reduced or _larger(x, tiles) for x in eqn.inputs if isinstance(x, Var))):
            reduced.update(rows)
    return reduced


def _candidates(forward_kernel: Eqn, backward_kernel: Eqn, of) -> list:
    """The frontier residuals of each top-level loop (see the module's docstring); `of`: `origin`."""
    forward_loops = forward_kernel.params["region"].eqns
    backward_loops = backward_kernel.params["region"].eqns
    if len(forward_loops) != len(backward_loops):
        return []
    found = []
    for at, (floop, bloop) in enumerate(zip(forward_loops, backward_loops)):
        tiles = _grid_tiles(floop) if floop.prim is p.loop_p else None
        body = _body(bloop, tiles, of) if tiles is not None else None
        if body is None:
            continue
        region = floop.params["region"]
        values = {o for e in region.eqns for o in e.outputs}
        reduced = _reduced(region, tiles)
        defined = {of(e.outputs[0]) for e in body.eqns if len(e.outputs) == 1 and not regions(e)}
        frontier = set()
        for eqn in body.eqns:
            recomputed = eqn.outputs and all(of(o) in values for o in eqn.outputs)
            if not recomputed or regions(eqn) or any(_row_axes(of(o), tiles) is None for o in eqn.outputs):
                frontier |= {of(x) for e in walk_eqns([eqn]) for x in e.inputs if isinstance(x, Var)}
        extent = {t: e.value for t, e in zip(tiles, floop.inputs[1::2])}
        for eqn in region.eqns:
            var = eqn.outputs[0] if len(eqn.outputs) == 1 else None
            if var in reduced and var in defined and var in frontier:
                axes = _row_axes(var, tiles)
                found.append(Residual(at, var, axes, tuple(extent[t] for t in axes)))
    return found


def _buffer_type(r: Residual, program: Program) -> HostType:
    device = next(v.type.device for v in program.inputs if isinstance(v.type, HostType))
    return contiguous(r.shape, r.var.type.dtype, device)


def _store(r: Residual, buf: Var, source, sites) -> list:
    """The equations storing `r.var` (its size-1 axes squeezed) into `buf` at the grid tiles."""
    b = Builder(sites, source)
    value = r.var
    for axis in reversed(range(value.type.rank)):
        if value.type.shape[axis] == 1:
            value = b.op(p.squeeze_p, value, axis=axis)
    b.emit(p.store_p, buf, *r.tiles, value, masked=False, index=(("tile",),) * len(r.tiles))
    return _renamed(b.eqns)


def _load(r: Residual, out: Var, tiles: tuple, buf: Var, source, sites) -> list:
    """The equations loading `buf` at `tiles` into `out` (the backward's `r.var`, its size-1 axes restored)."""
    b = Builder(sites, source)
    shape = tuple(d for d in out.type.shape if d != 1)
    value = b.op(p.load_p, buf, *tiles, shape=shape, dtype=buf.type.dtype,
                 index=(("tile",),) * len(tiles), masked=False)
    for axis, d in enumerate(out.type.shape):
        if d == 1:
            value = b.op(p.expand_dims_p, value, axis=axis)
    assert value.type == out.type, (value.type, out.type)
    eqns = _renamed(b.eqns)
    return [*eqns[:-1], attrs.evolve(eqns[-1], outputs=(out,))]


def _renamed(eqns) -> list:
    """`eqns` with site ids of their own (`residual_<prim>_<n>`), apart from the vjp's."""
    return [attrs.evolve(e, site=e.site.replace("vjp_", "residual_", 1)) for e in eqns]


def _loading(kernel: Eqn, found: tuple, buffers: list, of) -> Eqn:
    """The backward kernel equation with each residual's recomputation replaced by its load (in the loop
    whose body holds its tiles; a residual no loop holds stays recomputed, its buffer unread)."""
    loops = list(kernel.params["region"].eqns)
    sites = itertools.count()
    for at, loop in enumerate(loops):
        mine = {r.var: (r, buf) for r, buf in zip(found, buffers)
                if loop.prim is p.loop_p and _body(loop, r.tiles, of) is not None}
        if mine:
            loops[at] = _replace_in(loop, _body(loop, next(iter(mine.values()))[0].tiles, of), mine, sites, of)
    region = Region((), loops)
    used = {x for e in walk_eqns(loops) for x in e.inputs if isinstance(x, Var)}
    operands = [x for x in (*kernel.inputs, *buffers) if x in used]
    return attrs.evolve(kernel, inputs=tuple(dict.fromkeys(operands)), params=kernel.params.set("region", region))


def _replace_in(loop: Eqn, body: Region, mine: dict, sites, of) -> Eqn:
    """`loop` with `body` (its region or its chunk loop's) loading the residuals of `mine`."""
    tiles = {of(t): t for t in body.params}
    eqns = []
    for eqn in body.eqns:
        hit = mine.get(of(eqn.outputs[0])) if len(eqn.outputs) == 1 and not regions(eqn) else None
        if hit is None:
            eqns.append(eqn)
            continue
        r, buf = hit
        eqns += _load(r, eqn.outputs[0], tuple(tiles[t] for t in r.tiles), buf, eqn.source, sites)
    new_body = Region(body.params, eqns, body.results)
    region = loop.params["region"]
    if region is body:
        return attrs.evolve(loop, params=loop.params.set("region", new_body))
    inner = [attrs.evolve(e, params=e.params.set("region", new_body)) if e.prim is p.loop_p and
             e.params["region"] is body else e for e in region.eqns]
    return attrs.evolve(loop, params=loop.params.set("region", Region(region.params, inner, region.results)))
