"""Memory accesses transposed: a store's cotangent is a load of the output's cotangent at the same
index; a load's cotangent is written into the input's gradient buffer at the same index, by a plain store
where each element is read by one lane of one program (`exclusive`), else by an atomic add (a weight
row read by every row tile, a gather through an index tensor, a tile re-read on every inner iteration);
a gather through a view of a tensor the kernel also reads another way is finished on the host (`deferred`).

With the Config tunable `vjp_reduction="partials"`, a load read by several programs (no gather) writes
instead into its program's own row of a partials buffer `[programs, *shape]` (a store, or an atomic add
that no other program contends for when inner iterations re-read it), summed on the host after the
kernel: a deterministic second stage (`Partials`, allocated and summed by `program.py`)."""
from __future__ import annotations

import math

import attrs
import torch

from ..trace import primitives as p
from ..trace.ir import Var, walk_eqns
from .host import contiguous

EXCLUSIVE_ENTRIES = ("slice", "int", "new")  # index entries that name the same elements in every program


@attrs.frozen
class Partials:
    """Per-program partials (the tunable `vjp_reduction`): `enabled` or not, each block's value (the
    Config's, as host code reads one: `trace.host_blocks`); filled while transposing: `buffers` (gradient
    buffer -> (partials Var, its grid loop)), the blocks their sizes read, and whether any load could use them."""

    enabled: bool
    blocks: dict
    buffers: dict = attrs.field(factory=dict)
    used_blocks: set = attrs.field(factory=set)
    eligible: list = attrs.field(factory=list)

    def counts(self, grid, missing) -> list | None:
        """The number of programs of a grid loop along each of its dims `missing` (positions), or None where
        one does not start at 0 or is no tile of a block."""
        counts = []
        for i in missing:
            end = tile_range_end(grid, i)
            if end is None:
                return None
            kind, dim = grid.params["dims"][i]
            counts.append(end if kind == "grid" else -(-end // self.blocks[dim.block]))
        return counts


def tile_range_end(loop, i: int):
    """The end of dim `i` of `loop` where it is a tile (or grid index) range from 0 (else None)."""
    begin, end = loop.inputs[2 * i], loop.inputs[2 * i + 1]
    if loop.params["dims"][i][0] not in ("tile", "grid") or getattr(begin, "value", None) != 0:
        return None
    return getattr(end, "value", None)


@attrs.frozen
class Buffers:
    """The kernel's host tensors and theirs in the backward: `grads` (an input read by the forward -> its
    gradient buffer), `cotangents` (a tensor the forward writes -> its cotangent), `loads` (how many load
    equations read each tensor), `partials`, `unit_tiles` (`tile.begin` of a tile of fixed block size 1 ->
    that tile: an index by it names the tile's one element), `chunks` (an inner tile of a chunked grid's
    number -> its `chunks.Chunk`: an index by it names its program's rows, each once over all programs),
    `deferrals` (gathers whose transpose the host finishes: `deferred.Deferrals`)."""

    grads: dict
    cotangents: dict
    loads: dict
    partials: Partials
    unit_tiles: dict = attrs.field(factory=dict)
    chunks: dict = attrs.field(factory=dict)
    deferrals: object = None


def unit_tiles(kernel, blocks) -> dict:
    """`tile_begin` results of the kernel's tiles whose block size is fixed at 1 -> those tiles."""
    ones = {b.id for b in blocks if b.fixed == 1}
    return {e.outputs[0]: e.inputs[0] for e in walk_eqns(kernel.params["region"].eqns)
            if e.prim is p.tile_begin_p and e.inputs[0].type.dim.block in ones}


def _tiles_named(eqn, buffers: Buffers) -> list | None:
    """The tiles an access's index walks (a unit tile's begin counts as that tile), None where an entry may
    name one element from several (program, lane)s: a gather, another scalar."""
    operands, named = iter(access_parts(eqn)[0]), []
    for entry in eqn.params["index"]:
        if entry[0] == "tile":
            named.append(next(operands))
        elif entry[0] == "scalar" and (tile := buffers.unit_tiles.get(next(operands))) is not None:
            named.append(tile)
        elif entry[0] not in EXCLUSIVE_ENTRIES:
            return None
    return named + [c.grid for t in named if (c := buffers.chunks.get(t.type.dim.tile)) is not None]


def access_parts(eqn):
    """A load's or store's (index inputs, value or None, mask or None)."""
    rest = list(eqn.inputs[1:])
    mask = rest.pop() if eqn.params["masked"] else None
    value = rest.pop() if eqn.prim is not p.load_p else None
    return rest, value, mask


def _write_parts(eqn):
    """A store's or atomic's (index inputs, written value, mask or None)."""
    if eqn.prim is p.store_p:
        return access_parts(eqn)
    index, values, mask = p.atomic_operands(eqn)
    return index, values[-1], mask


def written_value(eqn):
    """The value a store or an atomic writes."""
    return _write_parts(eqn)[1]


def cotangent_load(b, eqn, buffers: Buffers):
    """The cotangent of what `eqn` (a store, or an atomic add) writes: the output's cotangent at that index."""
    ct_buf = buffers.cotangents[eqn.inputs[0]]
    index, value, mask = _write_parts(eqn)
    shape = tuple(eqn.params.get("shape", value.type.shape))  # (an atomic's index may broadcast to its value)
    ct = b.op(p.load_p, ct_buf, *index, *([mask] if mask is not None else []), shape=shape,
              dtype=ct_buf.type.dtype, index=eqn.params["index"], masked=mask is not None)
    return b.broadcast(ct, value.type.shape)


def exclusive(eqn, tiles, buffers: Buffers) -> bool:
    """Whether no two (program, lane, iteration)s of the kernel read one element through load `eqn`:
    its tensor has no other load, and its index walks every enclosing loop's tile (no gathers)."""
    used = _tiles_named(eqn, buffers) if buffers.loads[eqn.inputs[0]] == 1 else None
    return used is not None and all(any(t is u for u in used) for t in tiles)


def stored_gradients(kernel, buffers: Buffers) -> dict:
    """Tensors whose gradient the backward writes by one plain store (their one load is `exclusive`) ->
    whether that load reads the tensor whole (then the buffer needs no zero fill). Such a buffer takes the
    tensor's own dtype: nothing sums into it, so float32 would only add traffic and a cast."""
    loads, bounds = tiled_loads(kernel)
    return {eqn.inputs[0]: not eqn.params["masked"] and _reads_whole(eqn, bounds, buffers)
            for eqn, tiles in loads if exclusive(eqn, tiles, buffers)}


def tiled_loads(kernel) -> tuple[list, dict]:
    """Each load of `kernel` with the tiles of the loops around it, in program order, and each loop's tile
    -> (that loop, the tile's position among its tiles)."""
    loads, bounds = [], {}

    def walk(eqns, tiles):
        for eqn in eqns:
            if eqn.prim is p.load_p:
                loads.append((eqn, tiles))
            elif eqn.prim is p.loop_p:
                region = eqn.params["region"]
                new = tuple(region.params[:len(region.params) - len(region.results)])
                bounds.update((t, (eqn, i)) for i, t in enumerate(new))
                walk(region.eqns, tiles + new)

    walk(kernel.params["region"].eqns, ())
    return loads, bounds


def _reads_whole(eqn, bounds: dict, buffers: Buffers) -> bool:
    """Whether load `eqn` reads every element of its (statically shaped) tensor: each axis a full slice, or
    a tile of a plain tile loop from 0 to at least the axis's size."""
    operands, shape = iter(access_parts(eqn)[0]), eqn.inputs[0].type.shape
    for axis, entry in enumerate(eqn.params["index"]):
        size = shape[axis] if axis < len(shape) else None
        if entry[0] == "slice":
            if not (isinstance(size, int) and entry[1] == 0 and entry[2] == size):
                return False
            continue
        if entry[0] not in ("tile", "scalar"):
            return False
        operand = next(operands)
        tile = operand if entry[0] == "tile" else buffers.unit_tiles.get(operand)
        loop, i = bounds.get(tile, (None, 0))
        end = tile_range_end(loop, i) if loop is not None else None
        chunk = buffers.chunks.get(tile.type.dim.tile) if tile is not None else None
        if chunk is not None:  # (its loop's range is one program's rows; the chunks cover the original)
            end = chunk.end if chunk.begin == 0 else None
        if not (isinstance(size, int) and isinstance(end, int) and end >= size):
            return False
    return len(eqn.params["index"]) == len(shape)


def transpose_load(b, eqn, ct, tiles, buffers: Buffers, env: dict) -> None:
    """Write the cotangent `ct` of load `eqn` into its tensor's gradient buffer (a deferred gather: into
    its slots, `deferred.py`, or a fused one's into its row's cotangent in `env`)."""
    plan = buffers.deferrals.plan_of(eqn, b.copies) if buffers.deferrals is not None else None
    if plan is not None:
        buffers.deferrals.transpose(b, eqn, ct, tiles, plan, buffers.grads, env)
        return
    grad = buffers.grads.get(eqn.inputs[0])
    if grad is None:
        return
    index, _, mask = access_parts(eqn)
    value = b.convert(ct, grad.type.dtype)
    if exclusive(eqn, tiles, buffers):
        b.emit(p.store_p, grad, *index, value, *([mask] if mask is not None else []), index=eqn.params["index"],
               masked=mask is not None)
        return
    if mask is None and _into_partials(b, eqn, grad, value, index, tiles, buffers):
        return
    b.emit(p.P["atomic_add"], grad, *index, value, *([mask] if mask is not None else []),  # (masked-off lanes: none)
           shape=tuple(eqn.params["shape"]), index=eqn.params["index"], masked=mask is not None, sem="relaxed",
           scope="gpu")


def _into_partials(b, eqn, grad, value, index, tiles, buffers: Buffers) -> bool:
    """Write into this program's row of `grad`'s partials buffer (False where the access cannot: a gather)."""
    named = _tiles_named(eqn, buffers)
    if named is None:
        return False
    grid = b.grid
    grid_tiles = grid.params["region"].params
    missing = [i for i, t in enumerate(grid_tiles) if not any(t is u for u in named)]
    partials = buffers.partials
    counts = partials.counts(grid, missing)
    known = partials.buffers.get(grad)
    if counts is None or (known is not None and known[1] is not grid):
        return False
    partials.eligible.append(eqn)
    if not partials.enabled:
        return False
    partials.used_blocks.update(grid.params["dims"][i][1].block for i in missing if grid.params["dims"][i][0] == "tile")
    if known is None:
        var = Var(contiguous((math.prod(counts), *grad.type.shape), grad.type.dtype, grad.type.device))
        partials.buffers[grad] = known = (var, grid)
    row = None
    for i, count in zip(missing, counts):  # (a grid index is its own id)
        tile_id = b.op(p.tile_id_p, grid_tiles[i]) if grid.params["dims"][i][0] == "tile" else grid_tiles[i]
        row = tile_id if row is None else b.add(b.mul(row, count), tile_id)
    if row is None:  # (every grid tile in the index: one program per element after all)
        row = b.op(p.full_p, shape=(), value=0, dtype=torch.int32)
    row_index = (("scalar",), *eqn.params["index"])
    inner = tuple(t for t in tiles if not any(t is g for g in grid_tiles))
    if exclusive(eqn, inner, buffers):
        b.emit(p.store_p, known[0], row, *index, value, index=row_index, masked=False)
    else:
        b.emit(p.P["atomic_add"], known[0], row, *index, value, shape=tuple(eqn.params["shape"]), index=row_index,
               masked=False, sem="relaxed", scope="gpu")
    return True
