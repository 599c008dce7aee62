"""Abstract evaluation: each primitive's rule from input types (and params) to output types."""
from __future__ import annotations

import functools

import torch

from ..rule_table import RuleTable
from . import primitives as p
from .types import PyScalarType, TensorType, TileDim, broadcast_shapes, lanes_dim

ABSTRACT_EVAL = RuleTable("abstract-eval rule")  # Primitive -> (input types, **params) -> output types


def _sample(t):
    """A stand-in to ask torch its own dtype rules: a one-element CPU tensor of the same rank and dtype.

    Not a meta tensor: meta kernels accept dtypes the real kernels refuse (`&` on floats, `-` on bools).
    """
    if isinstance(t, PyScalarType):
        return {float: 1.5, int: 3, bool: True}[t.kind]
    return torch.ones([1] * t.rank, dtype=t.dtype)


@functools.lru_cache(maxsize=4096)
def result_dtype(fn, key, types) -> torch.dtype:
    """The dtype `fn` gives for inputs of `types` (`key` names `fn` for the cache)."""
    del key
    with torch._C.DisableTorchFunction():
        return fn(*[_sample(t) for t in types]).dtype


def shape_of(t) -> tuple:
    return () if isinstance(t, PyScalarType) else t.shape


def _pointwise_rule(prim, fn):
    def rule(*types):
        shape = broadcast_shapes(*[shape_of(t) for t in types])
        if shape is None:
            shapes = ("[" + ", ".join(map(str, shape_of(t))) + "]" for t in types)
            raise ValueError("shapes " + ", ".join(shapes) + " don't broadcast")
        dtype = result_dtype(fn, prim.name, tuple(types))
        return (TensorType(shape, dtype),)

    return rule


for _prim, _fn in p.POINTWISE.items():
    ABSTRACT_EVAL.add(_prim, _pointwise_rule(_prim, _fn))


@ABSTRACT_EVAL.register(p.convert_p)
def _convert(x, *, dtype):
    return (TensorType(shape_of(x), dtype),)


@ABSTRACT_EVAL.register(p.stop_gradient_p)
def _stop_gradient(x):
    return (x,)


def reduced_shape(shape, axis, keepdim):
    return tuple((1 if keepdim else None) if i == axis else d for i, d in enumerate(shape) if keepdim or i != axis)


def _reduction_rule(fn):
    def rule(x, *, axis, keepdim):
        with torch._C.DisableTorchFunction():
            dtype = fn(_sample(x), axis).dtype if x.rank else fn(_sample(x)).dtype
        return (TensorType(reduced_shape(x.shape, axis, keepdim), dtype),)

    return rule


for _prim, _fn in p.REDUCTIONS.items():
    ABSTRACT_EVAL.add(_prim, _reduction_rule(_fn))


def _scan_rule(fn):
    def rule(x, *, axis, reverse):
        with torch._C.DisableTorchFunction():
            return (TensorType(x.shape, fn(_sample(x), axis).dtype),)

    return rule


for _prim, _fn in p.SCANS.items():
    ABSTRACT_EVAL.add(_prim, _scan_rule(_fn))


def _combined(xs, combine):
    """The operands of a combine-function scan or reduction: one shape, a combine region over their dtypes."""
    if not xs or any(x.shape != xs[0].shape for x in xs):
        raise ValueError("the scanned or reduced values must have one shape")
    if [v.type.dtype for v in combine.params] != [x.dtype for x in xs] * 2:
        raise ValueError("the combine function's arguments must have the values' dtypes")


@ABSTRACT_EVAL.register(p.associative_scan_p)
def _associative_scan(*xs, axis, reverse, combine):
    _combined(xs, combine)
    return tuple(TensorType(x.shape, x.dtype) for x in xs)


@ABSTRACT_EVAL.register(p.combine_reduce_p)
def _combine_reduce(*xs, axis, keepdim, combine, other):
    _combined(xs, combine)
    return tuple(TensorType(reduced_shape(x.shape, axis, keepdim), x.dtype) for x in xs)


@ABSTRACT_EVAL.register(p.sort_p)
def _sort(x, *, descending):
    return (TensorType(x.shape, x.dtype), TensorType(x.shape, torch.int64))


@ABSTRACT_EVAL.register(p.topk_p)
def _topk(x, *, k, largest):
    shape = tuple(x.shape[:-1]) + (k,)
    return (TensorType(shape, x.dtype), TensorType(shape, torch.int64))


@ABSTRACT_EVAL.register(p.gather_p)
def _gather(src, index, *, axis):
    if index.rank != src.rank or any(a != b for d, (a, b) in enumerate(zip(src.shape, index.shape)) if d != axis):
        raise ValueError("gather's index must have the source's shape outside the gathered axis")
    return (TensorType(index.shape, src.dtype),)


@ABSTRACT_EVAL.register(p.reshape_p)
def _reshape(x, *, shape):
    return (TensorType(shape, x.dtype),)


@ABSTRACT_EVAL.register(p.permute_p)
def _permute(x, *, perm):
    return (TensorType(tuple(x.shape[i] for i in perm), x.dtype),)


@ABSTRACT_EVAL.register(p.expand_dims_p)
def _expand_dims(x, *, axis):
    shape = list(x.shape)
    shape.insert(axis, 1)
    return (TensorType(shape, x.dtype),)


@ABSTRACT_EVAL.register(p.squeeze_p)
def _squeeze(x, *, axis):
    return (TensorType(x.shape[:axis] + x.shape[axis + 1:], x.dtype),)


@ABSTRACT_EVAL.register(p.broadcast_to_p)
def _broadcast_to(x, *, shape):
    return (TensorType(shape, x.dtype),)


@ABSTRACT_EVAL.register(p.stack_p)
def _stack(*xs):
    first = xs[0]
    if any(x.shape != first.shape or x.dtype != first.dtype for x in xs):
        raise ValueError("stacked values must have one shape and dtype")
    return (TensorType(tuple(first.shape) + (len(xs),), first.dtype),)


@ABSTRACT_EVAL.register(p.split_p)
def _split(x):
    if not x.shape or x.shape[-1] != 2:
        raise ValueError("split needs a value whose last dimension has size 2")
    half = TensorType(x.shape[:-1], x.dtype)
    return (half, half)


@ABSTRACT_EVAL.register(p.concat_p)
def _concat(*xs, axis):
    first = xs[0]
    rest = [tuple(d for i, d in enumerate(x.shape) if i != axis) for x in xs]
    if any(r != rest[0] or x.dtype != first.dtype or not isinstance(x.shape[axis], int) for r, x in zip(rest, xs)):
        raise ValueError("concatenated values must have one dtype and shape but along a static `axis`")
    shape = list(first.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return (TensorType(shape, first.dtype),)


@ABSTRACT_EVAL.register(p.flip_p)
def _flip(x, *, axis):
    return (x,)


@ABSTRACT_EVAL.register(p.full_p)
def _full(*, shape, value, dtype):
    return (TensorType(shape, dtype),)


@ABSTRACT_EVAL.register(p.iota_p)
def _iota(*, start, stop, dtype):
    """start, start + 1, ... stop - 1; `stop` a block's full lanes (`lanes_dim`, start 0): 0 ... block size - 1."""
    return (TensorType((stop if isinstance(stop, TileDim) else stop - start,), dtype),)


@ABSTRACT_EVAL.register(p.dot_p)
def _dot(a, b, *acc, out_dtype, precision):
    return (TensorType(a.shape[:-1] + b.shape[-1:], out_dtype),)


@ABSTRACT_EVAL.register(p.load_p)
def _load(*inputs, shape, dtype, index, masked):
    return (TensorType(shape, dtype),)


@ABSTRACT_EVAL.register(p.store_p)
def _store(*inputs, index, masked):
    return ()


@ABSTRACT_EVAL.register(*p.ATOMIC)
def _atomic(target, *inputs, shape, index, masked, sem, scope):
    """The old values: the target's dtype, in the value's shape (the index's `shape`, or one it broadcasts to)."""
    value = inputs[-2] if masked else inputs[-1]
    return (TensorType(value.shape, target.dtype),)


@ABSTRACT_EVAL.register(p.signal_p)
def _signal(pad, *index_inputs, shape, index, **order):
    """The old values of the signalled entries."""
    return (TensorType(tuple(shape), pad.dtype),)


@ABSTRACT_EVAL.register(p.wait_p)
def _wait(pad, *index_inputs, shape, index, **order):
    return ()


@ABSTRACT_EVAL.register(p.tile_begin_p, p.tile_end_p, p.tile_id_p, p.tile_len_p, p.tile_count_p,
                        p.block_size_p)
def _scalar_rule(*inputs, **params):
    return (TensorType((), torch.int32),)


@ABSTRACT_EVAL.register(p.lanes_view_p)
def _lanes_view(x, *, dims):
    tiles = {lanes_dim(d.block): d for d in dims}
    return (TensorType(tuple(tiles.get(d, d) for d in x.shape), x.dtype),)


@ABSTRACT_EVAL.register(p.lanes_merge_p)
def _lanes_merge(new, old, *, dims):
    if _lanes_view(old, dims=dims)[0].shape != new.shape:
        raise ValueError(f"a value of shape {new.render()} written back over lanes of shape {old.render()}")
    return (old,)


@ABSTRACT_EVAL.register(p.tile_index_p)
def _tile_index(tile):
    return (TensorType((tile.dim,), torch.int32),)


@ABSTRACT_EVAL.register(p.loop_p)
def _loop(*inputs, dims, region, grid):
    return tuple(v.type for v in region.results)


@ABSTRACT_EVAL.register(p.cond_p)
def _cond(pred, *, region, orelse):
    return tuple(v.type for v in region.results)


@ABSTRACT_EVAL.register(p.while_p)
def _while(cond, *inits, region):
    return tuple(v.type for v in region.results[1:])


@ABSTRACT_EVAL.register(p.kernel_p)
def _kernel(*inputs, region):
    return ()


@ABSTRACT_EVAL.register(p.host_p)
def _host(*inputs, fn, args, kwargs, out_types):
    return tuple(out_types)



def _integer_scalar_or_tensor(t) -> bool:
    if isinstance(t, PyScalarType):
        return t.kind is int
    return not (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool)


def _random_rule(dtype, outputs: int = 1):
    def rule(seed, offsets, **params):
        if not (_integer_scalar_or_tensor(seed) and _integer_scalar_or_tensor(offsets)) or shape_of(seed):
            raise TypeError("takes an integer scalar seed and integer offsets")
        return (TensorType(shape_of(offsets), dtype),) * outputs

    return rule


for _prim in p.RANDOM:
    ABSTRACT_EVAL.add(_prim, _random_rule(torch.int32 if _prim is p.randint_p else torch.float32,
                                          4 if _prim is p.rand4x_p else 1))


@ABSTRACT_EVAL.register(p.rng_seed_p)
def _rng_seed(tensor):
    return (TensorType((), torch.int64),)
