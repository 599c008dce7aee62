"""Row chunks: before transposing, a one-dimensional grid loop whose body loads something every program
reads (a weight row: its index names no tile), or reduces whole rows, becomes a grid over chunks of `rows`
consecutive rows, each program walking its chunk's tiles in an inner loop, with that load (and the pure
code reading only it) hoisted out of the inner loop.

The transpose then sums that load's cotangent in a carry of the backward inner loop (float32 for half
precision) and writes it once per program: an atomic add that `programs = extent / rows` contend for,
instead of one per row tile, or one row of a `[programs, *shape]` partials buffer (`vjp_reduction`).
The chunk's inner tile still names every row exactly once over all programs (`Chunk`), so loads through
it keep their plain-store gradients (`memory.exclusive`). The Config tunable `vjp_rows_per_program`
picks `rows`; other kernels are left as they are and do not register it.

A backward that reduces whole rows wider than `ROW_CHUNK` (and of at most `LONG_ROW`, which the
heuristics keep whole) holds each row in registers: one program per row ran one program per SM, whose
loads wait for the reductions before them. Chunked, the inner loop is pipelined (`lower/defaults.
_chunk_stages`): the next rows' loads are in flight while this row is reduced (H200, softmax backward
bf16, one row per program -> chunked with 3 stages: 4096x16384 0.180 -> 0.131 ms; narrower rows, which
fit several programs an SM, ran 4-15% slower chunked: 8192x8192 0.114 -> 0.119, 8192x4096 0.058 -> 0.066).
"""
from __future__ import annotations

import attrs
import torch

from ..errors import ConfigError
from ..lower.defaults import LONG_ROW, ROW_CHUNK, default_config
from ..lower.rewrites.reduction_loops import reduced_extent
from ..trace import primitives as p
from ..trace.ir import Eqn, Lit, Program, Region, Tunable, Var, walk_eqns
from ..trace.queries import next_power_of_2
from ..trace.sizes import is_symbolic
from ..trace.types import HostType, TensorType, TileDim
from .builder import Builder

ROWS_KNOB = "vjp_rows_per_program"  # the Config tunable: rows of the chunked grid loop per program
TARGET_PROGRAMS = 512  # the default's program count: about four per SM of an H200 (132 SMs)


@attrs.frozen
class Chunk:
    """An inner tile of a chunked grid: program `grid` walks its rows of the original range [begin, end)."""

    grid: Var
    begin: int
    end: int


def _static_range(loop) -> tuple | None:
    """A one-dimensional tile loop's static (begin, end), else None."""
    if len(loop.params["dims"]) != 1 or loop.params["dims"][0][0] != "tile":
        return None
    bounds = tuple(getattr(a, "value", None) for a in loop.inputs[:2])
    if not all(isinstance(b, int) and not is_symbolic(b) for b in bounds):
        return None
    return bounds


def _hoisted(region: Region) -> list:
    """The grid body's equations that do not depend on its tile: loads and pure code reading only values
    from outside the loop (or hoisted ones), typed without the tile."""
    tile, inside, hoisted = region.params[0], set(region.params), []
    for eqn in region.eqns:
        pure = eqn.prim is p.load_p or not eqn.prim.effectful
        free = not any(isinstance(x, Var) and x in inside for x in eqn.inputs)
        if pure and free and "region" not in eqn.params and not any(_mentions(v, tile) for v in eqn.outputs):
            hoisted.append(eqn)
        else:
            inside.update(eqn.outputs)
    return hoisted


def _mentions(var, tile) -> bool:
    """Whether a value's type is shaped by `tile`'s lanes."""
    dim = tile.type.dim
    return isinstance(var.type, TensorType) and any(isinstance(d, TileDim) and d.tile == dim.tile
                                                   for d in var.type.shape)


def _shared_load(eqns) -> bool:
    """Whether some hoisted load reads a floating tensor (one every program reads: its gradient is shared)."""
    return any(e.prim is p.load_p and isinstance(e.inputs[0].type, HostType)
               and e.inputs[0].type.dtype.is_floating_point for e in eqns)


def _reduces_wide_rows(region: Region) -> bool:
    """Whether the body reduces whole rows wider than ROW_CHUNK and of at most LONG_ROW (wider ones the
    heuristics loop over in chunks, which the rewrite would hide in its inner loop)."""
    extents = [n for e in region.eqns if (n := reduced_extent(e)) is not None]
    return bool(extents) and all(ROW_CHUNK < next_power_of_2(n) <= LONG_ROW for n in extents)


def _tile_only_indexes(region: Region) -> bool:
    """Whether the body reads its tile only to index memory: no `tile.id`, `.count`, `.begin`, `.end` or
    lane indices, whose values would change with the tiles' start (a chunk's rows need not be a multiple
    of the block), so the tiles may be regrouped."""
    tile = region.params[0]
    return all(e.prim in p.WRITES or e.prim is p.load_p for e in walk_eqns(region.eqns)
               if any(x is tile for x in e.inputs))


def chunkable(kernel: Eqn) -> list:
    """The kernel's top-level loops the rewrite applies to."""
    return [loop for loop in kernel.params["region"].eqns
            if loop.prim is p.loop_p and _static_range(loop) is not None
            and _tile_only_indexes(loop.params["region"])
            and (_shared_load(_hoisted(loop.params["region"])) or _reduces_wide_rows(loop.params["region"]))]


@attrs.frozen
class Chunked:
    """The rewrite's result: the kernel, its chunk tiles (tile number -> `Chunk`), the knob (None where
    nothing was chunked) and the chunked tiles' blocks."""

    kernel: Eqn
    chunks: dict
    knob: Tunable | None
    block_ids: frozenset

    def clamp(self, blocks) -> tuple:
        """`blocks` with those of the chunked tiles over at most one program's rows, so the default
        heuristics and the tuner's domain size them for one chunk."""
        rows = self.knob.value if self.knob is not None else None
        return tuple(attrs.evolve(b, extent=min(b.extent, rows)) if b.id in self.block_ids and b.extent is not None
                     else b for b in blocks)


def chunk_rows(forward: Program, kernel: Eqn, rows, sites) -> Chunked:
    """`kernel` (the forward's, two-passed) with each chunkable grid loop over chunks of `rows` rows (the
    Config's `vjp_rows_per_program`, None: its default); unchanged where none is."""
    targets = chunkable(kernel)
    check_rows(rows, bool(targets), forward.name)
    if not targets:
        return Chunked(kernel, {}, None, frozenset())
    knob = rows_tunable(targets, rows, default_config(forward).block_sizes)
    chunks, loops = {}, []
    for loop in kernel.params["region"].eqns:
        if loop not in targets:
            loops.append(loop)
            continue
        new, tile = _chunked(loop, knob.value, sites)
        chunks[tile.type.dim.tile] = Chunk(new.params["region"].params[0], *_static_range(loop))
        loops.append(new)
    region = Region((), loops)
    return Chunked(attrs.evolve(kernel, params=kernel.params.set("region", region)), chunks, knob,
                   frozenset(loop.params["dims"][0][1].block for loop in targets))


def rows_tunable(loops, rows, forward_sizes) -> Tunable:
    """`vjp_rows_per_program` over powers of two up to the largest extent. The default gives about
    TARGET_PROGRAMS programs, and no fewer rows than the forward's default block (`forward_sizes`) walks:
    fewer programs than the forward's where that has fewer than TARGET_PROGRAMS."""
    extent = max(end - begin for begin, end in map(_static_range, loops))
    top = next_power_of_2(max(extent, 1))
    choices = tuple(2 ** i for i in range(top.bit_length()))
    least = max(forward_sizes[loop.params["dims"][0][1].block] for loop in loops)
    default = min(top, max(least, next_power_of_2(max(-(-extent // TARGET_PROGRAMS), 1))))
    return Tunable(ROWS_KNOB, choices, default, default if rows is None else rows)


def check_rows(rows, applies: bool, name: str) -> None:
    """A given `vjp_rows_per_program` is a positive int, and only for a backward that registers it."""
    if rows is None:
        return
    if not applies:
        raise ConfigError(f"Config tunable {ROWS_KNOB}={rows!r}: {name}'s backward has no grid loop whose programs "
                          "all read one tensor or reduce whole rows, so it does not register this knob", source=None)
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise ConfigError(f"Config value {ROWS_KNOB}={rows!r}: give a positive int (rows per program)", source=None)


def _chunked(loop: Eqn, rows: int, sites) -> tuple:
    """`for c in grid(programs): hoisted; for t in tile(begin + c*rows, min(that + rows, end)): the rest`."""
    region = loop.params["region"]
    begin, end = _static_range(loop)
    hoisted = _hoisted(region)
    taken = set(map(id, hoisted))
    program = Var(TensorType((), torch.int32))
    b = Builder(sites, loop.source)
    start = b.mul(program, rows)
    start = b.add(start, begin) if begin else start
    stop = b.op(p.P["minimum"], b.add(start, rows), end)
    tile = region.params[0]
    rest = Region((tile,), [e for e in region.eqns if id(e) not in taken], ())
    inner = Eqn(p.loop_p, (start, stop), (), {"dims": loop.params["dims"], "grid": False, "chunk": True,
                                              "region": rest}, loop.source, f"vjp_loop_{next(sites)}")
    programs = Lit(-(-(end - begin) // rows), loop.inputs[1].type)
    body = Region((program,), [*hoisted, *b.eqns, inner], ())
    outer = attrs.evolve(loop, inputs=(Lit(0, loop.inputs[0].type), programs),
                         params=loop.params.set("dims", (("grid", None),)).set("region", body))
    return outer, tile
