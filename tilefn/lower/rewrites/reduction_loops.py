"""Looped reductions: a reduction over a whole row becomes a loop over chunks of that row.

`Config.reduction_loops[i]` is a chunk size (or None: keep the whole row) for the i-th extent in
`reduction_extents(program)`. Inside a grid loop, every value whose shape holds that extent is a
*row value*. Each reduction over the extent becomes a loop that recomputes its input chunk by
chunk and combines partial results in a carry; each store of a row value becomes a loop that
recomputes and stores it chunk by chunk. Row values are recomputed (the input is re-read) rather
than kept: that is what frees the registers a whole row would hold. A max whose sum of
`exp(row - max)` follows (softmax, logsumexp) shares one loop with that sum (`online_rescale`).
Bodies this rewrite cannot express (nested loops, argmax, scans or products over the row, partial
slices) are left whole.
"""
from __future__ import annotations

import attrs
import torch

from ...trace.ir import BlockInfo, Eqn, Lit, Region, Var, regions, walk_eqns
from ...trace import primitives as p
from ...trace.primitives import POINTWISE, P, reduction_identity
from ...trace.types import PyScalarType, TensorType, TileDim, TileType
from ...trace.queries import grid_loops
from . import online_rescale

COMBINE = {p.reduce_sum_p: P["add"], p.reduce_max_p: P["maximum"], p.reduce_min_p: P["minimum"],
           p.reduce_prod_p: P["mul"]}
ROW_WISE = {p.convert_p, p.expand_dims_p, p.squeeze_p, p.permute_p, p.broadcast_to_p, p.full_p, p.load_p, *COMBINE,
            *POINTWISE}


class _Bail(Exception):
    """The body uses the row in a way this rewrite does not handle."""


def reduced_extent(eqn):
    """The static extent (> 1) `eqn` reduces whole, if it is a reduction this rewrite can loop."""
    if eqn.prim not in COMBINE:
        return None
    dim = eqn.inputs[0].type.shape[eqn.params["axis"]]
    return dim if isinstance(dim, int) and dim > 1 else None


def first_reductions(program) -> list[tuple]:
    """(extent, the first equation reducing it whole) per static extent reduced inside grid loops,
    in order of first appearance (the reduction sites of `tilefn.lower.sites`)."""
    firsts = {}
    for loop in grid_loops(program):
        for eqn in loop.params["region"].eqns:
            extent = reduced_extent(eqn)
            if extent is not None:
                firsts.setdefault(extent, eqn)
    return list(firsts.items())


def reduction_extents(program) -> list[int]:
    """The static extents reduced whole inside grid loops, in order of first appearance."""
    return [extent for extent, _ in first_reductions(program)]


class _Chunker:
    """Rebuilds one grid-loop body with the row extent `n` walked in chunks of `block`."""

    def __init__(self, eqns, n, dim: TileDim):
        self.n, self.dim = n, dim
        self.producers = {out: eqn for eqn in eqns for out in eqn.outputs}

    def reduces_row(self, eqn) -> bool:
        return reduced_extent(eqn) == self.n

    def new_tile(self) -> Var:
        return Var(TileType(self.dim))

    def is_row(self, atom) -> bool:
        return isinstance(atom, Var) and isinstance(atom.type, TensorType) and self.n in atom.type.shape

    def chunk_type(self, t: TensorType) -> TensorType:
        if list(t.shape).count(self.n) > 1:
            raise _Bail
        return TensorType(tuple(self.dim if d == self.n else d for d in t.shape), t.dtype)

    def chunk_index(self, eqn, tile_var):
        """A load/store index with the whole-row slice replaced by the chunk's tile."""
        entries, inputs, rest = [], [], list(eqn.inputs[1:])
        for entry in eqn.params["index"]:
            if entry[0] in ("tile", "scalar", "gather"):
                inputs.append(rest.pop(0))
                entries.append(entry)
            elif entry[0] == "slice" and entry[2] - entry[1] == self.n:
                if entry[1] != 0:
                    raise _Bail
                inputs.append(tile_var)
                entries.append(("tile",))
            else:
                entries.append(entry)
        return tuple(entries), inputs, rest

    def materialize(self, atom, body, mapping, tile_var):
        """The chunk of row value `atom`, computing what it needs into `body`."""
        if atom in mapping:
            return mapping[atom]
        if not self.is_row(atom):
            return atom
        eqn = self.producers.get(atom)
        if eqn is not None and eqn.prim is p.iota_p and eqn.params["start"] == 0:
            return self._chunk_iota(eqn, body, mapping, tile_var)
        if eqn is None or eqn.prim not in ROW_WISE:
            raise _Bail
        params = eqn.params
        if eqn.prim is p.load_p:
            entries, inputs, rest = self.chunk_index(eqn, tile_var)
            inputs = [eqn.inputs[0]] + [self.materialize(a, body, mapping, tile_var) for a in inputs + rest]
            params = params.set("index", entries).set("shape", self.chunk_type(eqn.outputs[0].type).shape)
        else:
            inputs = [self.materialize(a, body, mapping, tile_var) for a in eqn.inputs]
            if "shape" in params:
                params = params.set("shape", self.chunk_type(TensorType(params["shape"], torch.float32)).shape)
        outputs = tuple(Var(self.chunk_type(o.type)) if self.is_row(o) else Var(o.type) for o in eqn.outputs)
        body.append(attrs.evolve(eqn, inputs=tuple(inputs), outputs=outputs, params=params, site=_copied(eqn)))
        mapping.update(zip(eqn.outputs, outputs))
        return mapping[atom]

    def _chunk_iota(self, eqn, body, mapping, tile_var):
        """A chunk of `arange(n)` (a row's column numbers): the chunk tile's indices."""
        out = Var(self.chunk_type(eqn.outputs[0].type))
        index = out if out.type.dtype == torch.int32 else Var(TensorType((self.dim,), torch.int32))
        body.append(Eqn(p.tile_index_p, (tile_var,), (index,), {}, eqn.source))
        if index is not out:
            body.append(Eqn(p.convert_p, (index,), (out,), {"dtype": out.type.dtype}, eqn.source))
        mapping[eqn.outputs[0]] = out
        return out

    def loop(self, build, tile_var, origin, carries=()):
        """A loop eqn over the row's chunks for `origin` (a reduction or store); `build(body, mapping)`
        fills the body and returns results."""
        body, mapping = [], {}
        params = [init_param for _, init_param in carries]
        results = build(body, mapping)
        region = Region([tile_var, *params], body, results)
        inputs = (Lit(0, PyScalarType(int)), Lit(self.n, PyScalarType(int)), *(init for init, _ in carries))
        outputs = tuple(Var(r.type) for r in results)
        return Eqn(p.loop_p, inputs, outputs, {"dims": (("tile", self.dim),), "region": region, "grid": False},
                   origin.source, f"{origin.site}/loop" if origin.site is not None else None)


def _copied(eqn) -> str | None:
    """The site id of a chunk's copy of `eqn`: configured as `eqn` itself (see `tilefn.lower.sites`)."""
    return f"{eqn.site}/chunk" if eqn.site is not None and "/" not in eqn.site else eqn.site


def _looped_reduction(chunker, eqn):
    """full(identity) ; loop { partial = reduce(chunk) ; acc = combine(acc, partial) } [; convert]."""
    out = eqn.outputs[0]
    acc_dtype = torch.float32 if out.type.dtype in (torch.float16, torch.bfloat16) else out.type.dtype
    acc_type = TensorType(out.type.shape, acc_dtype)
    init = Var(acc_type)
    eqns = [Eqn(p.full_p, (), (init,), {"shape": acc_type.shape, "value": reduction_identity(eqn.prim, acc_dtype),
                                       "dtype": acc_dtype}, eqn.source)]
    param, tile_var = Var(acc_type), chunker.new_tile()

    def build(body, mapping):
        chunk = chunker.materialize(eqn.inputs[0], body, mapping, tile_var)
        if chunk.type.dtype != acc_dtype:
            wide = Var(TensorType(chunk.type.shape, acc_dtype))
            body.append(Eqn(p.convert_p, (chunk,), (wide,), {"dtype": acc_dtype}, eqn.source))
            chunk = wide
        partial, combined = Var(acc_type), Var(acc_type)
        body.append(attrs.evolve(eqn, inputs=(chunk,), outputs=(partial,), site=_copied(eqn)))
        body.append(Eqn(COMBINE[eqn.prim], (param, partial), (combined,), {}, eqn.source))
        return [combined]

    loop = chunker.loop(build, tile_var, eqn, carries=[(init, param)])
    if acc_dtype == out.type.dtype:
        loop = attrs.evolve(loop, outputs=(out,))
        return eqns + [loop]
    return eqns + [loop, Eqn(p.convert_p, (loop.outputs[0],), (out,), {"dtype": out.type.dtype}, eqn.source)]


def _looped_store(chunker, eqn):
    tile_var = chunker.new_tile()

    def build(body, mapping):
        entries, inputs, rest = chunker.chunk_index(eqn, tile_var)
        atoms = [chunker.materialize(a, body, mapping, tile_var) for a in inputs + rest]
        body.append(attrs.evolve(eqn, inputs=(eqn.inputs[0], *atoms), params=eqn.params.set("index", entries),
                                 site=_copied(eqn)))
        return []

    return [chunker.loop(build, tile_var, eqn)]


def _rewrite_body(region, n, dim):
    chunker = _Chunker(region.eqns, n, dim)
    if any(regions(eqn) for eqn in region.eqns):
        raise _Bail  # a nested loop, cond or while
    pairs = online_rescale.plan(region.eqns, chunker)
    fused, out = online_rescale.skipped(pairs), []
    for eqn in region.eqns:
        if id(eqn) in pairs:
            out += online_rescale.fused_loop(chunker, pairs[id(eqn)], _copied)
        elif id(eqn) in fused:
            continue  # (built by the fused loop at its sum's place)
        elif reduced_extent(eqn) == n:
            out += _looped_reduction(chunker, eqn)
        elif eqn.prim is p.store_p and any(chunker.is_row(a) for a in eqn.inputs[1:]):
            out += _looped_store(chunker, eqn)
        elif eqn.prim in p.ATOMIC and any(chunker.is_row(a) for a in (*eqn.inputs, *eqn.outputs)):
            raise _Bail  # (an atomic must run once per element, never be recomputed or dropped)
        elif any(chunker.is_row(o) for o in eqn.outputs):
            continue  # recomputed, chunk by chunk, inside the loops that need it
        elif any(chunker.is_row(a) for a in eqn.inputs):
            raise _Bail  # e.g. argmax or a product over the row
        else:
            out.append(eqn)
    return Region(region.params, loads_first(out), region.results)


def loads_first(eqns) -> list:
    """`eqns` with the loads that need no chunk loop's result, and the pure equations computing their indices,
    moved before the first chunk loop (in their order): their memory latency then overlaps the loop's, where
    after it every program waited for them alone (cross-entropy's label, then the logit it gathers). A load
    never moves past a write (a store, an atomic, a loop holding one)."""
    first = next((i for i, e in enumerate(eqns) if e.prim is p.loop_p), len(eqns))
    made_by = {o: e for e in eqns[first:] for o in e.outputs}
    late, written, loads = set(), False, []  # late: values made by (or after) a loop, or past a write
    for eqn in eqns[first:]:
        pure = not eqn.prim.effectful and not regions(eqn)
        if any(a in late for a in eqn.inputs if isinstance(a, Var)) or not (pure or eqn.prim is p.load_p and not written):
            late.update(eqn.outputs)
            written = written or any(e.prim in p.WRITES for e in walk_eqns([eqn]))
        elif eqn.prim is p.load_p:
            loads.append(eqn)
    moved, todo = set(), list(loads)
    while todo:
        eqn = todo.pop()
        if id(eqn) not in moved:
            moved.add(id(eqn))
            todo += [made_by[a] for a in eqn.inputs if isinstance(a, Var) and a in made_by]
    early = [e for e in eqns[first:] if id(e) in moved]
    return eqns[:first] + early + [e for e in eqns[first:] if id(e) not in moved]


def looped_reductions(program, config):
    """Apply `config.reduction_loops` to every grid loop that reduces over those extents."""
    chunks = {n: size for n, size in zip(reduction_extents(program), config.reduction_loops) if size}
    if not chunks:
        return program
    blocks = list(program.blocks)
    tiles = 1 + max((dim.tile for dim in _tile_dims(program)), default=-1)
    loops = []
    for loop in grid_loops(program):
        region = loop.params["region"]
        for n, size in chunks.items():
            dim = TileDim(tiles, len(blocks))
            try:
                region = _rewrite_body(region, n, dim)
            except _Bail:
                continue
            blocks.append(BlockInfo(dim.block, n, size))
            tiles += 1
        loops.append(attrs.evolve(loop, params=loop.params.set("region", region)))
    kernel = program.kernel
    new_kernel = attrs.evolve(kernel, params=kernel.params.set("region", Region((), loops)))
    eqns = [new_kernel if e is kernel else e for e in program.eqns]
    return attrs.evolve(program, eqns=eqns, blocks=blocks)


def _tile_dims(program):
    """Every TileDim a loop of `program` walks (new chunk tiles are numbered after them)."""
    for eqn in walk_eqns(program.eqns):
        if eqn.prim is p.loop_p:
            for kind, dim in eqn.params["dims"]:
                if dim is not None:
                    yield dim
