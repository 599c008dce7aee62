"""The reference semantics: evaluate a Program with eager PyTorch, tile by tile (edge tiles ragged)."""
from __future__ import annotations

import itertools

import attrs
import torch

from . import interpret_views  # noqa: F401  (registers its rules in the table)
from .config import Config
from .interpret_table import RULES, rule
from .lower.defaults import complete_config
from .scan_eval import inclusive_scan, tree_reduce
from .trace import primitives as p
from .trace.dynamic import bound_sizes
from .trace.host import evaluate_host
from .trace.ir import Lit, Program
from .trace.sizes import value as size_value
from .trace.types import TileDim, lanes_dim
from .traced import as_traced


@attrs.frozen
class TileVal:
    """One concrete tile: indices [begin, end) of a block of `block` lanes, one of `count` tiles of its loop."""

    begin: int
    end: int
    block: int
    count: int


class Context:
    def __init__(self, block_sizes, device, sizes=None):
        self.block_sizes, self.device = block_sizes, device
        self.sizes = sizes or {}  # SizeVar name -> this call's value (static_shapes=False)
        self.tiles: dict[int, TileVal] = {}
        self.env: dict = {}

    def resolve(self, shape) -> list[int]:
        return [self.extent(d) if isinstance(d, TileDim) else d for d in shape]

    def extent(self, dim: TileDim) -> int:
        """A tile's valid lanes (a block's full lanes for a dim no tile walks)."""
        if dim.tile is None:
            return self.block_sizes[dim.block]
        return self.tiles[dim.tile].end - self.tiles[dim.tile].begin


def _read(env, atom):
    return atom.value if isinstance(atom, Lit) else env[atom]


def _operand(ctx, env, atom):
    if isinstance(atom, Lit):
        return size_value(atom.value, ctx.sizes)  # (a symbolic size: its value in this call)
    return env[atom]


def eval_eqns(eqns, env, ctx) -> None:
    for eqn in eqns:
        ctx.env = env
        outs = RULES[eqn.prim](ctx, eqn, *[_operand(ctx, env, a) for a in eqn.inputs])
        for var, value in zip(eqn.outputs, outs):
            env[var] = value


def run_program(program: Program, tensors, config: Config | None = None):
    """Evaluate `program` on the tensor arguments (in order); returns what the kernel returns."""
    block_sizes = list(complete_config(program, config).block_sizes)
    device = next((t.device for t in tensors if isinstance(t, torch.Tensor)), torch.device("cpu"))
    ctx = Context(block_sizes, device, bound_sizes(program.inputs, tensors))
    env = dict(zip(program.inputs, tensors))
    env.update((var, tensor) for var, tensor in program.consts)
    env.update((var, capture.read()) for var, capture in program.captured)  # their values now
    eval_eqns(program.eqns, env, ctx)

    def out(o):
        if isinstance(o, tuple):
            return tuple(out(i) for i in o)
        if isinstance(o, Lit):
            return o.value
        return None if o is None else env[o]

    return out(program.outputs)


@rule(p.host_p)
def _host(ctx, eqn, *inputs):
    return evaluate_host(eqn, dict(zip(eqn.inputs, inputs)), ctx.sizes)


@rule(p.kernel_p)
def _kernel(ctx, eqn, *operands):
    eval_eqns(eqn.params["region"].eqns, ctx.env, ctx)
    return ()


def _as_int(v) -> int:
    return int(v.item()) if isinstance(v, torch.Tensor) else int(v)


class _ChainEnv(dict):
    """A loop body's bindings, falling back to the enclosing scope's."""

    def __init__(self, outer):
        super().__init__()
        self.outer = outer

    def __missing__(self, key):
        return self.outer[key]


@rule(p.loop_p)
def _loop(ctx, eqn, *inputs):
    dims, region, outer = eqn.params["dims"], eqn.params["region"], ctx.env
    n = len(dims)
    bounds = [(_as_int(inputs[2 * i]), _as_int(inputs[2 * i + 1])) for i in range(n)]
    carries = list(inputs[2 * n:])
    blocks = [1 if kind == "grid" else ctx.block_sizes[dim.block] for kind, dim in dims]
    starts = [range(b, e, blk) for (b, e), blk in zip(bounds, blocks)]
    for begins in itertools.product(*starts):
        env = _ChainEnv(outer)
        for i, (kind, dim) in enumerate(dims):
            if kind == "grid":
                env[region.params[i]] = torch.tensor(begins[i], dtype=torch.int32, device=ctx.device)
            else:
                (low, high), block = bounds[i], blocks[i]
                tile = TileVal(begins[i], min(begins[i] + block, high), block, -(-(high - low) // block))
                ctx.tiles[dim.tile] = tile
                env[region.params[i]] = tile
        env.update(zip(region.params[n:], carries))
        eval_eqns(region.eqns, env, ctx)
        carries = [_read(env, r) for r in region.results]
    return tuple(carries)


def _run_region(ctx, region, outer, args=()):
    """Evaluate `region` on `args` (its params) in a scope over `outer`; its results."""
    env = _ChainEnv(outer)
    env.update(zip(region.params, args))
    eval_eqns(region.eqns, env, ctx)
    ctx.env = outer
    return [_read(env, r) for r in region.results]


@rule(p.cond_p)
def _cond(ctx, eqn, pred):
    """Programs run one at a time, so a cond runs the one branch its program takes."""
    return tuple(_run_region(ctx, eqn.params["region" if bool(pred) else "orelse"], ctx.env))


@rule(p.while_p)
def _while(ctx, eqn, cond, *carries):
    outer = ctx.env
    while bool(cond):
        cond, *carries = _run_region(ctx, eqn.params["region"], outer, carries)
    return tuple(carries)


@rule(*p.POINTWISE)
def _pointwise(ctx, eqn, *args):
    result = p.POINTWISE[eqn.prim](*args)
    return (result.to(eqn.outputs[0].type.dtype),)


@rule(p.convert_p)
def _convert(ctx, eqn, x):
    if not isinstance(x, torch.Tensor):  # a runtime scalar: the Python number of the call
        return (torch.tensor(x, dtype=eqn.params["dtype"], device=ctx.device),)
    return (x.to(eqn.params["dtype"]),)


@rule(p.stop_gradient_p)
def _stop_gradient(ctx, eqn, x):
    return (x,)


@rule(*p.REDUCTIONS)
def _reduce(ctx, eqn, x):
    out = p.REDUCTIONS[eqn.prim](x, eqn.params["axis"], keepdim=eqn.params["keepdim"])
    return (out.to(eqn.outputs[0].type.dtype),)


@rule(*p.SCANS)
def _scan(ctx, eqn, x):
    axis, flip = eqn.params["axis"], (lambda v: torch.flip(v, [eqn.params["axis"]]) if eqn.params["reverse"] else v)
    return (flip(p.SCANS[eqn.prim](flip(x), axis)).to(eqn.outputs[0].type.dtype),)


def _combiner(ctx, region):
    """The combine region as a function of (left tensors, right tensors), evaluated elementwise on whole tensors."""
    def combine(left, right):
        env = _ChainEnv(ctx.env)
        env.update(zip(region.params, [*left, *right]))
        eval_eqns(region.eqns, env, ctx)
        shape = torch.broadcast_shapes(*(v.shape for v in left))
        return [torch.broadcast_to(_read(env, r), shape) for r in region.results]

    return combine


@rule(p.associative_scan_p)
def _associative_scan(ctx, eqn, *xs):
    params = eqn.params
    return tuple(inclusive_scan(_combiner(ctx, params["combine"]), list(xs), params["axis"], params["reverse"]))


@rule(p.combine_reduce_p)
def _combine_reduce(ctx, eqn, *xs):
    params = eqn.params
    return tuple(tree_reduce(_combiner(ctx, params["combine"]), list(xs), params["axis"], params["keepdim"]))


@rule(p.full_p)
def _full(ctx, eqn):
    p = eqn.params
    return (torch.full(ctx.resolve(p["shape"]), p["value"], dtype=p["dtype"], device=ctx.device),)


@rule(p.iota_p)
def _iota(ctx, eqn):
    p = eqn.params
    return (torch.arange(p["start"], ctx.resolve([p["stop"]])[0], dtype=p["dtype"], device=ctx.device),)


@rule(*p.RANDOM)
def _random(ctx, eqn, seed, offsets):
    seed = torch.as_tensor(seed, dtype=torch.int64)
    offsets = torch.as_tensor(offsets, device=ctx.device)
    drawn = p.RANDOM[eqn.prim](seed, offsets, **eqn.params)
    return drawn if isinstance(drawn, tuple) else (drawn,)


@rule(p.rng_seed_p)
def _rng_seed(ctx, eqn, tensor):
    return (tensor.reshape(-1)[0].to(torch.int64),)


def tf32(x: torch.Tensor) -> torch.Tensor:
    """float32 values rounded to TensorFloat-32 (10 mantissa bits, to nearest even), as a tf32 dot reads them."""
    bits = x.view(torch.int32).to(torch.int64)
    rounded = (bits + 0xFFF + ((bits >> 13) & 1)) & ~0x1FFF
    rounded = torch.where(rounded >= 2**31, rounded - 2**32, rounded).to(torch.int32).view(torch.float32)
    return torch.where(torch.isfinite(x), rounded, x)


@rule(p.dot_p)
def _dot(ctx, eqn, a, b, *acc):
    wide = torch.float32 if a.dtype.is_floating_point else torch.int64
    if a.dtype == torch.float64:
        wide = torch.float64
    if a.dtype == torch.float32 and eqn.params["precision"] == "tf32":
        a, b = tf32(a), tf32(b)
    out = torch.matmul(a.to(wide), b.to(wide))
    if acc:
        out = out + acc[0].to(wide)
    return (out.to(eqn.params["out_dtype"]),)


def _int32(ctx, v):
    return torch.tensor(v, dtype=torch.int32, device=ctx.device)


@rule(p.tile_index_p)
def _tile_index(ctx, eqn, tile):
    return (torch.arange(tile.begin, tile.end, dtype=torch.int32, device=ctx.device),)


@rule(p.tile_begin_p)
def _tile_begin(ctx, eqn, tile):
    return (_int32(ctx, tile.begin),)


@rule(p.tile_end_p)
def _tile_end(ctx, eqn, tile):
    return (_int32(ctx, tile.end),)


@rule(p.tile_len_p)
def _tile_len(ctx, eqn, tile):
    return (_int32(ctx, tile.end - tile.begin),)


@rule(p.tile_count_p)
def _tile_count(ctx, eqn, tile):
    return (_int32(ctx, tile.count),)


@rule(p.tile_id_p)
def _tile_id(ctx, eqn, tile):
    return (_int32(ctx, tile.begin // tile.block),)


@rule(p.block_size_p)
def _block_size(ctx, eqn):
    return (_int32(ctx, ctx.block_sizes[eqn.params["block"]]),)


def _lane_slices(ctx, shape, dims) -> tuple:
    """The index of the tiles' valid lanes in a value over their blocks' full lanes."""
    extents = {lanes_dim(d.block): ctx.extent(d) for d in dims}
    return tuple(slice(0, extents[d]) if d in extents else slice(None) for d in shape)


@rule(p.lanes_view_p)
def _lanes_view(ctx, eqn, x):
    return (x[_lane_slices(ctx, eqn.inputs[0].type.shape, eqn.params["dims"])],)


@rule(p.lanes_merge_p)
def _lanes_merge(ctx, eqn, new, old):
    out = old.clone()
    out[_lane_slices(ctx, eqn.inputs[1].type.shape, eqn.params["dims"])] = new
    return (out,)


def _python_index(entries, atoms, tensor, symbols):
    """The torch index for a load/store, the operands left over, and its overhangs: (axis from the end
    of the result, valid lanes, lanes) per bounded tile running past its axis. Gather indices are clamped
    into bounds. With a gather, every axis is indexed by a tensor placed on its result axes (torch would
    zip several gathers, or move them to the front past a slice)."""
    atoms, index, axis, overhangs, rank = list(atoms), [], 0, [], 0  # rank: result axes so far
    sizes, device = tensor.shape, tensor.device
    placed = []  # (per axis) its index, the result axis it starts at or None: an int
    for entry in entries:
        kind = entry[0]
        if kind == "new":
            index.append(None)
            rank += 1
            continue
        if kind == "tile":
            tile = atoms.pop(0)
            stop = min(tile.end, size_value(entry[1], symbols)) if len(entry) > 1 else tile.end
            if stop < tile.end:
                overhangs.append((rank, max(stop - tile.begin, 0), tile.end - tile.begin))
            index.append(slice(tile.begin, stop))
            placed.append((torch.arange(tile.begin, max(stop, tile.begin), device=device), rank))
            rank += 1
        elif kind == "slice":
            index.append(slice(entry[1], entry[2]))
            placed.append((torch.arange(entry[1], entry[2], device=device), rank))
            rank += 1
        elif kind in ("int", "scalar"):
            index.append(entry[1] if kind == "int" else _as_int(atoms.pop(0)))
            placed.append((torch.tensor(index[-1], device=device), None))
        else:  # a gather or a point
            gathered = atoms.pop(0).long().clamp(0, sizes[axis] - 1)
            index.append(gathered)
            if len(entry) > 1:  # ("gather", "same")
                rank -= gathered.ndim
            placed.append((gathered, rank))
            rank += gathered.ndim
        axis += 1
    overhangs = [(axis - rank, valid, lanes) for axis, valid, lanes in overhangs]
    if any(entry[0] == "gather" for entry in entries):
        index = tuple(_on_axes(value, start, rank) for value, start in placed)
    return tuple(index), atoms, overhangs


def _on_axes(value, start, rank):
    """`value` (an index tensor) viewed on result axes start, start + 1, ... of a rank-`rank` result."""
    if start is None:
        return value.reshape([1] * rank)
    return value.reshape([1] * start + list(value.shape) + [1] * (rank - start - value.ndim))


def _padded(value, overhangs):
    """A value read through overhanging tiles, padded with zeros to the tiles' lanes."""
    for axis, valid, lanes in overhangs:
        shape = list(value.shape)
        shape[axis] = lanes - valid
        value = torch.cat([value, torch.zeros(shape, dtype=value.dtype, device=value.device)], dim=axis)
    return value


def _trimmed(value, overhangs):
    """The lanes of a value (broadcast from the right) that fall inside the tensor through overhanging tiles."""
    for axis, valid, _ in overhangs:
        if value.ndim >= -axis and value.shape[axis] != 1:
            value = value.narrow(axis, 0, valid)
    return value


@rule(p.load_p)
def _load(ctx, eqn, tensor, *rest):
    index, rest, overhangs = _python_index(eqn.params["index"], rest, tensor, ctx.sizes)
    value = _padded(tensor[index].clone(), overhangs)
    if eqn.params["masked"]:
        value = torch.where(rest[0], value, torch.zeros((), dtype=value.dtype, device=value.device))
    return (value,)


@rule(p.store_p)
def _store(ctx, eqn, tensor, *rest):
    index, rest, overhangs = _python_index(eqn.params["index"], rest, tensor, ctx.sizes)
    value = _trimmed(rest[0], overhangs)
    if eqn.params["masked"] and any(e[0] == "gather" for e in eqn.params["index"]):
        mask = _trimmed(rest[1], overhangs)
        shape = torch.broadcast_shapes(value.shape, mask.shape)
        mask = mask.expand(shape)  # only the lanes it keeps write (a masked-off lane may share their element)
        tensor[tuple(i.expand(shape)[mask] for i in index)] = value.expand(shape)[mask]
        return ()
    if eqn.params["masked"]:
        value = torch.where(_trimmed(rest[1], overhangs), value, tensor[index])
    tensor[index] = value
    return ()


def _lane_ranks(positions):
    """Each lane's rank among the lanes updating the same element, in lane order (0 for the first)."""
    order = torch.sort(positions, stable=True).indices
    ordered = positions[order]
    lanes = torch.arange(positions.numel(), device=positions.device)
    first = torch.ones_like(ordered, dtype=torch.bool)
    first[1:] = ordered[1:] != ordered[:-1]
    starts = torch.cummax(torch.where(first, lanes, 0), 0).values
    ranks = torch.empty_like(lanes)
    ranks[order] = lanes - starts
    return ranks


def _atomic_update(tensor, index, update, values, mask=None):
    """Apply `update(old, *values)` lane by lane in lane order (vectorised over lanes of distinct
    elements: one round per repeat of an element) on the lanes `mask` keeps (all without one); returns
    the old values each lane saw (0 on a masked-off lane)."""
    target = tensor if tensor.dim() else tensor.unsqueeze(0)
    index = index if tensor.dim() else (0,)
    shape = values[0].shape
    flat = torch.arange(target.numel(), device=target.device).reshape(target.shape)
    positions = torch.broadcast_to(flat[index], shape).reshape(-1)
    coords = torch.unravel_index(positions, target.shape)
    lanes = [v.reshape(-1) for v in values]
    old = torch.zeros(positions.numel(), dtype=target.dtype, device=target.device)
    kept = torch.broadcast_to(mask, shape).reshape(-1) if mask is not None else None
    ranks = _lane_ranks(positions)
    for rank in range(int(ranks.max()) + 1 if ranks.numel() else 0):
        chosen = ranks == rank if kept is None else (ranks == rank) & kept
        at = tuple(c[chosen] for c in coords)
        current = target[at]
        old[chosen] = current
        target[at] = update(current, *(v[chosen] for v in lanes)).to(target.dtype)
    return old.reshape(shape)


def _cas(old, expected, value):
    return torch.where(old == expected, value, old)


@rule(*p.ATOMIC)
def _atomic(ctx, eqn, tensor, *rest):
    index, values, overhangs = _python_index(eqn.params["index"], rest, tensor, ctx.sizes)
    update = _cas if eqn.prim is p.atomic_cas_p else p.ATOMICS[eqn.prim]
    values = [_trimmed(v, overhangs) for v in values]
    mask = values.pop() if eqn.params["masked"] else None
    return (_padded(_atomic_update(tensor, index, update, values, mask), overhangs),)


def interpret(fn, config: Config | None = None):
    """`fn` run by the reference interpreter: traced (with `config`'s tunables), then evaluated with eager PyTorch."""
    kernel = as_traced(fn)

    def run(*args, **kwargs):
        program, tensors = kernel.trace_and_bind(args, kwargs, config.tunables if config is not None else None,
                                                 config.block_sizes if config is not None else None)
        return run_program(program, tensors, config)

    return run


from . import interpret_signals  # noqa: E402,F401  (its rules use this module's indexing helpers)
