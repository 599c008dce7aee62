"""The primitive registry: each primitive's abstract-evaluation rule and whether it has effects.

Other concerns (interpretation, printing, lowering) keep their own tables keyed by the
primitive's name, as in JAX.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import attrs
import torch

from .types import PyScalarType, TensorType, broadcast_shapes


@attrs.frozen
class Primitive:
    name: str
    abstract_eval: Callable  # (input types, **params) -> tuple of output types
    effectful: bool = False


PRIMITIVES: dict[str, Primitive] = {}


def register(name: str, *, effectful: bool = False):
    """Decorator: register `fn` as `name`'s abstract-evaluation rule; duplicates are refused."""

    def wrap(fn):
        if name in PRIMITIVES:
            raise ValueError(f"primitive {name!r} registered twice")
        PRIMITIVES[name] = Primitive(name, fn, effectful)
        return fn

    return wrap


def _sample(t):
    """A stand-in to ask torch its own dtype rules: a one-element CPU tensor of the same rank and dtype.

    Not a meta tensor: meta kernels accept dtypes the real kernels refuse (`&` on floats, `-` on bools).
    """
    if isinstance(t, PyScalarType):
        return {float: 1.5, int: 3, bool: True}[t.kind]
    return torch.ones([1] * t.rank, dtype=t.dtype)


@functools.lru_cache(maxsize=4096)
def _result_dtype(fn, key, types) -> torch.dtype:
    del key
    with torch._C.DisableTorchFunction():
        return fn(*[_sample(t) for t in types]).dtype


def shape_of(t) -> tuple:
    return () if isinstance(t, PyScalarType) else t.shape


# Pointwise families, registered from data: prim name -> the torch function that defines it.
UNARY = {
    "neg": torch.neg, "abs": torch.abs, "exp": torch.exp, "exp2": torch.exp2, "log": torch.log,
    "log2": torch.log2, "log1p": torch.log1p, "expm1": torch.expm1, "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt, "sin": torch.sin, "cos": torch.cos, "tan": torch.tan,
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "erf": torch.erf, "floor": torch.floor,
    "ceil": torch.ceil, "trunc": torch.trunc, "round": torch.round, "sign": torch.sign,
    "reciprocal": torch.reciprocal, "logical_not": torch.logical_not,
    "bitwise_not": torch.bitwise_not, "isnan": torch.isnan, "isinf": torch.isinf,
    "isfinite": torch.isfinite,
}
BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
    "floordiv": torch.floor_divide, "remainder": torch.remainder, "fmod": torch.fmod,
    "pow": torch.pow, "maximum": torch.maximum, "minimum": torch.minimum, "atan2": torch.atan2,
    "eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge,
    "logical_and": torch.logical_and, "logical_or": torch.logical_or,
    "logical_xor": torch.logical_xor, "bitwise_and": torch.bitwise_and,
    "bitwise_or": torch.bitwise_or, "bitwise_xor": torch.bitwise_xor,
    "lshift": torch.bitwise_left_shift, "rshift": torch.bitwise_right_shift,
}
TERNARY = {"where": torch.where}


def _accepting_scalars(fn):
    """torch.maximum, atan2, logical_and... refuse Python numbers (`relu`, `clamp` bind them with
    one): retry with the numbers as 0-d tensors of the dtype torch promotes the pair to."""
    @functools.wraps(fn)
    def call(a, b):
        try:
            return fn(a, b)
        except TypeError:
            if isinstance(a, torch.Tensor) == isinstance(b, torch.Tensor):
                raise
            dtype = torch.result_type(a, b)
            device = a.device if isinstance(a, torch.Tensor) else b.device
            wrap = lambda v: v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=dtype, device=device)  # noqa: E731
            return fn(wrap(a), wrap(b))

    return call


BINARY = {name: _accepting_scalars(fn) for name, fn in BINARY.items()}
POINTWISE = {**UNARY, **BINARY, **TERNARY}


def _pointwise_rule(name, fn):
    def rule(*types):
        shape = broadcast_shapes(*[shape_of(t) for t in types])
        if shape is None:
            shapes = ("[" + ", ".join(map(str, shape_of(t))) + "]" for t in types)
            raise ValueError("shapes " + ", ".join(shapes) + " don't broadcast")
        dtype = _result_dtype(fn, name, tuple(types))
        return (TensorType(shape, dtype),)

    return rule


for _name, _fn in POINTWISE.items():
    register(_name)(_pointwise_rule(_name, _fn))


@register("convert")
def _convert(x, *, dtype):
    return (TensorType(shape_of(x), dtype),)


REDUCTIONS = {
    "reduce_sum": torch.sum, "reduce_max": torch.amax, "reduce_min": torch.amin,
    "reduce_prod": torch.prod, "argmax": torch.argmax, "argmin": torch.argmin,
}


def reduction_identity(prim: str, dtype: torch.dtype):
    """The value a reduction ignores (what masked-off lanes hold): 0, 1, or the dtype's extreme."""
    if prim == "reduce_sum":
        return 0
    if prim == "reduce_prod":
        return 1
    low = prim in ("reduce_max", "argmax")
    if dtype.is_floating_point:
        return -math.inf if low else math.inf
    info = torch.iinfo(dtype if dtype != torch.bool else torch.int32)
    return info.min if low else info.max


def reduced_shape(shape, axis, keepdim):
    return tuple((1 if keepdim else None) if i == axis else d for i, d in enumerate(shape) if keepdim or i != axis)


def _reduction_rule(name, fn):
    def rule(x, *, axis, keepdim):
        with torch._C.DisableTorchFunction():
            dtype = fn(_sample(x), axis).dtype if x.rank else fn(_sample(x)).dtype
        return (TensorType(reduced_shape(x.shape, axis, keepdim), dtype),)

    return rule


for _name, _fn in REDUCTIONS.items():
    register(_name)(_reduction_rule(_name, _fn))

def _scan_dtype(fn, x, axis):
    with torch._C.DisableTorchFunction():
        return fn(_sample(x), axis).dtype


SCANS = {"cumsum": torch.cumsum, "cumprod": torch.cumprod}
for _name, _fn in SCANS.items():
    register(_name)(lambda x, *, axis, _fn=_fn: (TensorType(x.shape, _scan_dtype(_fn, x, axis)),))


@register("reshape")
def _reshape(x, *, shape):
    return (TensorType(shape, x.dtype),)


@register("permute")
def _permute(x, *, perm):
    return (TensorType(tuple(x.shape[p] for p in perm), x.dtype),)


@register("expand_dims")
def _expand_dims(x, *, axis):
    shape = list(x.shape)
    shape.insert(axis, 1)
    return (TensorType(shape, x.dtype),)


@register("squeeze")
def _squeeze(x, *, axis):
    return (TensorType(x.shape[:axis] + x.shape[axis + 1:], x.dtype),)


@register("broadcast_to")
def _broadcast_to(x, *, shape):
    return (TensorType(shape, x.dtype),)


@register("full")
def _full(*, shape, value, dtype):
    return (TensorType(shape, dtype),)


@register("iota")
def _iota(*, start, stop, dtype):
    return (TensorType((stop - start,), dtype),)


@register("dot")
def _dot(a, b, *acc, out_dtype):
    return (TensorType(a.shape[:-1] + b.shape[-1:], out_dtype),)


@register("load", effectful=True)
def _load(*inputs, shape, dtype, index, masked):
    return (TensorType(shape, dtype),)


@register("store", effectful=True)
def _store(*inputs, index, masked):
    return ()


def _scalar_rule(*inputs, **params):
    return (TensorType((), torch.int32),)


for _name in ("tile_begin", "tile_end", "tile_id", "tile_len", "block_size"):
    register(_name)(_scalar_rule)


@register("tile_index")
def _tile_index(tile):
    return (TensorType((tile.dim,), torch.int32),)


@register("loop", effectful=True)
def _loop(*inputs, dims, region, grid):
    return tuple(v.type for v in region.results)


@register("kernel", effectful=True)
def _kernel(*inputs, region):
    return ()


@register("host", effectful=True)
def _host(*inputs, fn, args, kwargs, out_types):
    return tuple(out_types)
