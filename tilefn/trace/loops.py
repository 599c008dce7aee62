"""Tile loops: `for t in tl.tile(...)` opens a region on the first step and closes it on the second.

Loop-carried values are found from the calling frame's locals: a name rebound in the body to a
value made in the body is a carry, initialised from the name's value at loop entry.
"""
from __future__ import annotations

import sys

import torch

from ..errors import InvalidTileRange, LoopCarryError, ShapeError, TileBoundError, TracingError
from . import block_lanes, state as st
from .ir import Eqn, Region, Var, substitute, walk_eqns
from .primitives import loop_p, tile_end_p
from .queries import phase_of
from .proxies import BlockSize, BlockValue, DeviceValue, HostTensor, Tile, check_in_scope, to_atom
from .sizes import SizeExpr, bucket
from .state import RegionBuilder
from .statements import check_tile_loop
from .types import TensorType, TileDim, TileType
from ..errors import user_source


class LoopDimSpec:
    """One dimension of a loop as the user gave it."""

    def __init__(self, begin, end, block_size, explicit: bool, grid: bool):
        self.begin, self.end, self.block_size = begin, end, block_size
        self.explicit, self.grid = explicit, grid


def _is_static(v):
    """An int, or a symbolic size (static_shapes=False): known on the host at launch."""
    return (isinstance(v, int) and not isinstance(v, bool)) or isinstance(v, SizeExpr)


def _bound(v, what):
    if isinstance(v, BlockSize):  # an int in host code (the traced Config's), a device scalar in a loop
        v = v.value()
    if isinstance(v, Tile):
        raise TileBoundError(f"a tile is given as the {what[:-1]} of a tile loop; loop over its range with "
                             "tl.tile(t.begin, t.end) (or over the sizes with tl.tile(x.size(0)))")
    if _is_static(v):
        return v
    if isinstance(v, DeviceValue) and v.ndim == 0 and not v.dtype.is_floating_point:
        check_in_scope(v)
        return v
    raise ShapeError(f"tile loop {what} must be an int or an integer device scalar, got {v!r}")


def _end_bound(state, end):
    """A static upper bound of a tile loop's end: a static end itself, another tile's `end` (at most that tile's
    bound), else None (not known while tracing)."""
    if _is_static(end):
        return end
    made = next((e for e in reversed(end.region.eqns) if end.ir_var in e.outputs), None)
    if made is None or made.prim is not tile_end_p:
        return None
    return state.tiles[made.inputs[0].type.dim.tile].end_bound


class TileLoop:
    """The iterator `tl.tile`/`tl.grid` return: yields the tiles once, then closes the loop."""

    def __init__(self, dims: list[LoopDimSpec], multi: bool):
        self.dims, self.multi = dims, multi
        self.step = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.step += 1
        frame = sys._getframe(1)
        if self.step == 1:
            return self._open(frame)
        if self.step == 2:
            self._close(frame)
        raise StopIteration

    def _open(self, frame):
        state = st.require()
        self.top_level = state.region is None
        if self.top_level:
            check_tile_loop(frame.f_code, frame.f_lineno)
            if state.kernel is None:
                state.kernel = RegionBuilder(None)
            parent = state.kernel
            _name_host_values(state, frame.f_locals)
        else:
            parent = state.region
        self.parent = parent
        self.bounds, self.loop_dims, handles = [], [], []
        region = RegionBuilder(parent)
        region.source = user_source()
        region.loop = self
        for spec in self.dims:
            begin, end = _bound(spec.begin, "starts"), _bound(spec.end, "ends")
            if self.top_level and not (_is_static(begin) and _is_static(end)):
                raise ShapeError("the outermost tile loop is the launch grid: its bounds must be static ints")
            self.bounds += [begin, end]
            if spec.grid:
                var = Var(TensorType((), torch.int32))
                handles.append(DeviceValue(var, region))
                self.loop_dims.append(("grid", None))
                continue
            extent = end - begin if _is_static(begin) and _is_static(end) else None
            if isinstance(extent, SizeExpr):  # the heuristics' extent: the traced size's bucket
                extent = bucket(max(extent.hint, 0))
            block = _block_id(state, spec.block_size, extent)
            dim = TileDim(state.new_tile_number(), block)
            var = Var(TileType(dim))
            state.tile_vars[dim.tile] = var
            tile = Tile(var, region)
            tile.static_begin = begin if _is_static(begin) else None
            tile.static_end = end if _is_static(end) else None
            tile.end_bound = _end_bound(state, end)
            tile.explicit_range = spec.explicit
            state.tiles[dim.tile] = tile
            handles.append(tile)
            self.loop_dims.append(("tile", dim))
        state.region = region
        self.region, self.handles = region, handles
        state.open_tiles.extend(h for h in handles if isinstance(h, Tile))
        self.viewed = block_lanes.view_values(frame.f_locals, region, [h.dim for h in handles if isinstance(h, Tile)])
        self.entry = dict(frame.f_locals)
        for name, value in self.entry.items():
            if isinstance(value, DeviceValue):
                state.hints.setdefault(value.ir_var, name)
        return tuple(handles) if self.multi else handles[0]

    def _close(self, frame):
        state = st.require()
        if state.region is not self.region:
            raise TracingError("tile loops closed out of order")
        self._check_ranges()
        exit_locals = dict(frame.f_locals)
        body_types = {i: v.proxy.ir_var.type for i, v in self.viewed.items()}
        block_lanes.restore(self.viewed)
        carries = find_carries(self.entry, exit_locals, self.region, self.handles, body_types)
        if carries and self.top_level:
            names = ", ".join(f"`{n}`" for n, _, _ in carries)
            raise LoopCarryError(f"{names} rebound in the outermost tile loop: its iterations run in "
                                 "parallel, so nothing can be carried from one to the next")
        params = [h.ir_var for h in self.handles]
        mapping, results = {}, []
        for name, init, out in carries:
            param = Var(init.ir_var.type)
            mapping[init.ir_var] = param
            params.append(param)
            state.hints[param] = name
            result = out.ir_var
            if id(init) in self.viewed:  # a carry over full lanes: the tiles' lanes written back
                merge = block_lanes.merge_eqn(self.viewed[id(init)], result, state.new_site("lanes_merge"),
                                              self.region.source)
                self.region.eqns.append(merge)
                result = merge.outputs[0]
            results.append(result)
        body = substitute(Region(params, self.region.eqns, results), mapping)
        outputs = tuple(Var(r.type) for r in results)
        inputs = tuple(to_atom(b) for b in self.bounds) + tuple(init.ir_var for _, init, _ in carries)
        params = {"dims": tuple(self.loop_dims), "region": body, "grid": self.top_level}
        if self.top_level and state.phase:
            params["phase"] = state.phase  # after that many tl.barrier()s (see `barrier`)
        eqn = Eqn(loop_p, inputs, outputs, params, user_source(3), state.new_site("loop"))
        self.region.closed = True
        del state.open_tiles[len(state.open_tiles) - sum(isinstance(h, Tile) for h in self.handles):]
        name_device_values(state, exit_locals, self.region, self.handles)
        state.region = None if self.top_level else self.parent
        self.parent.eqns.append(eqn)
        if self.top_level:
            state.loops_closed += 1
        for (name, _, out), var in zip(carries, outputs):
            out.ir_var, out.region = var, self.parent
            state.hints[var] = name


    def _check_ranges(self):
        """Static bounds run forwards (checked at the loop's end, so `a, b = tile` is reported first)."""
        for begin, end in zip(self.bounds[::2], self.bounds[1::2]):
            if isinstance(begin, int) and isinstance(end, int) and begin > end:
                raise InvalidTileRange(f"tile loop over [{begin}, {end}): begin={begin}, end={end}; the begin "
                                       "must not be past the end (give tl.tile(begin, end) in that order)",
                                       source=self.region.source)


def _block_id(state, block_size, extent):
    if block_size is None:
        return state.new_block(extent)
    if isinstance(block_size, (BlockSize, BlockValue)):
        return block_size.block
    if isinstance(block_size, int) and not isinstance(block_size, bool) and block_size > 0:
        return state.new_block(extent, fixed=block_size)
    raise ShapeError(f"block_size must be a positive int or tl.register_block_size(...), got {block_size!r}")


def _uses(var, eqns) -> bool:
    return any(var in e.inputs for e in walk_eqns(eqns))


def _stale(value, region) -> bool:
    """A device value or tile from a loop that has ended (not visible in `region`)."""
    return isinstance(value, (DeviceValue, Tile)) and (value.region.closed or not value.region.encloses(region))


def find_carries(entry, exit_locals, region, handles, body_types=None):
    """(name, initial proxy, body proxy) for each name the body rebinds to another device value.

    The value a name leaves the body with is usually made in the body; it may also be one made
    before the loop (`a, b = b, a + b`), when no other name still holds it. Two carries may leave with
    one value (`block_max = block_new_max`): each gets its own loop output, equal after the loop. `body_types`: the type
    a value over full lanes had in the body (id(proxy) -> type; `block_lanes`).
    """
    carries, seen = [], {}
    for name, value in exit_locals.items():
        if not isinstance(value, DeviceValue) or any(value is h for h in handles) or _stale(value, region):
            continue
        if name not in entry or entry[name] is value:
            continue  # a temporary of the body, or a name the body leaves alone
        init = entry[name]
        if _stale(init, region):
            continue  # the name held a temporary of an earlier, finished loop: a new temporary
        if isinstance(init, (bool, int, float)):
            raise LoopCarryError(f"`{name}` is carried through the loop but starts as a Python number; "
                                 f"start it as a tensor, e.g. `{name} = tl.zeros([...], dtype=...)`")
        if not isinstance(init, DeviceValue):
            raise LoopCarryError(f"`{name}` is rebound inside the tile loop to a device value, but "
                                 f"before the loop it held a {type(init).__name__}")
        if value.region is not region:
            _check_outer_value_unshared(name, value, exit_locals)
        if id(value) in seen and seen[id(value)] is init:
            continue  # two names of one carry
        seen[id(value)] = init  # (two carries may end an iteration as one value: `m = new_m` after `new_m = ...`)
        entering = (body_types or {}).get(id(init), init.ir_var.type)
        if entering != value.ir_var.type:
            raise LoopCarryError(
                f"loop-carried `{name}` enters the loop as {entering.render()} but leaves the body "
                f"as {value.ir_var.type.render()}; make them match (e.g. with .to(dtype))")
        carries.append((name, init, value))
    for name, init, _ in carries:
        aliases = [n for n, v in entry.items() if v is init and n != name]
        if aliases and _uses(init.ir_var, region.eqns):
            raise LoopCarryError(
                f"`{name}` and `{aliases[0]}` name the same value before the loop and `{name}` is "
                f"rebound in it, so uses of that value in the body are ambiguous; give `{aliases[0]}` "
                f"its own copy (`{aliases[0]} = {name}.clone()`) or stop using it in the loop")
    return carries


def _check_outer_value_unshared(name, value, exit_locals):
    """A name rebound to a value made before the loop becomes that value's loop result: unshared."""
    others = [n for n, v in exit_locals.items() if v is value and n != name]
    if others:
        raise LoopCarryError(
            f"`{name}` is rebound inside the loop to the value `{others[0]}` holds, which was made "
            f"before the loop; carry a copy instead (`{name} = {others[0]}.clone()`)")


def name_device_values(state, names, region, handles):
    for name, value in names.items():
        if isinstance(value, tuple):
            for i, item in enumerate(value):
                if isinstance(item, Tile) and item.region is region:
                    state.hints.setdefault(item.ir_var, f"{name}_{i}")
        if isinstance(value, (DeviceValue, Tile)) and value.region is region:
            state.hints.setdefault(value.ir_var, name)


def _name_host_values(state, names):
    for name, value in names.items():
        if isinstance(value, HostTensor) and value.ir_var not in state.hints:
            state.hints[value.ir_var] = name


def loop_dims_from(sizes_or_begin, end=None, block_size=None, grid=False):
    """The LoopDimSpecs and multi-ness of `tl.tile(...)`'s arguments."""
    if end is not None:
        if isinstance(sizes_or_begin, (list, tuple)) != isinstance(end, (list, tuple)):
            raise ShapeError("tl.tile(begin, end): give both as scalars or both as lists")
        if isinstance(sizes_or_begin, (list, tuple)):
            sizes = list(zip(sizes_or_begin, end))
            multi = True
        else:
            sizes, multi = [(sizes_or_begin, end)], False
        explicit = True
    else:
        multi = isinstance(sizes_or_begin, (list, tuple))
        sizes = [(0, s) for s in (sizes_or_begin if multi else [sizes_or_begin])]
        explicit = False
    blocks = block_size if isinstance(block_size, (list, tuple)) else [block_size] * len(sizes)
    if len(blocks) != len(sizes):
        raise ShapeError(f"{len(sizes)} loop dimensions but {len(blocks)} block sizes")
    return [LoopDimSpec(b, e, bs, explicit, grid) for (b, e), bs in zip(sizes, blocks)], multi


def barrier() -> None:
    """`tl.barrier()` between top-level tile loops: every program of the loops before it finishes
    before any of the loops after it starts (so they may read what the earlier ones wrote). Each
    phase is its own launch of the kernel, ordered on the stream: no spin-wait, any pid_type."""
    state = st.require()
    if state.region is not None:
        raise TracingError("tl.barrier() orders top-level tile loops: call it between two of them, "
                           "not inside a tile loop")
    if state.kernel is not None and any(phase_of(e) == state.phase for e in state.kernel.eqns):
        state.phase += 1  # (a barrier with no loop before it in its phase orders nothing)

