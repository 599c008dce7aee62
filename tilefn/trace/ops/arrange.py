"""Rearranging device values: torch.stack, torch.cat, flip, and tl.split / tl.join (Helion's hl.split/join)."""
from __future__ import annotations

import functools

import torch

from ...errors import ShapeError, TracingError
from ..primitives import concat_p, flip_p, split_p, stack_p
from ..proxies import DeviceValue, Tile, apply, op
from ..types import TileDim, broadcast_shapes
from .casts import to, value_of
from .views import axes_of, expand, permute, reshape


def _shape_text(x) -> str:
    return "[" + ", ".join(map(str, x.shape)) + "]"


def _values(name, tensors) -> list:
    """The device values of a torch.stack/cat argument, converted to the dtype torch promotes them to."""
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise TracingError(f"torch.{name} takes a non-empty list or tuple of tensors")
    values = [value_of(t) for t in tensors]
    if not all(isinstance(v, DeviceValue) for v in values):
        kinds = sorted({type(v).__name__ for v in values if not isinstance(v, DeviceValue)})
        raise TracingError(f"torch.{name} inside a tile loop takes device values (tiles of tensors), got {kinds}; "
                           "make numbers into values with tl.full(...)")
    dtype = functools.reduce(torch.promote_types, (v.dtype for v in values))
    return [to(v, dtype) for v in values]


def _new_axis(dim, ndim: int) -> int:
    if not -(ndim + 1) <= dim <= ndim:
        raise ShapeError(f"dimension {dim} is out of range for stacking {ndim}-d values (expected {-(ndim + 1)} "
                         f"to {ndim})")
    return dim % (ndim + 1)


def stack_last(values) -> DeviceValue:
    """`values` (one shape and dtype) along a new last axis."""
    return apply(stack_p, *values)


@op("stack", method=False)
def stack(tensors, dim=0, *, out=None):
    if out is not None:
        raise TracingError("torch.stack(..., out=) is not supported inside a tile loop; assign the result")
    values = _values("stack", tensors)
    first = values[0]
    for v in values[1:]:
        if v.shape != first.shape:
            raise ShapeError(f"torch.stack expects each tensor to be equal size, got {_shape_text(first)} and "
                             f"{_shape_text(v)}")
    axis = _new_axis(dim, first.ndim)
    out_value = stack_last(values)
    if axis == first.ndim:
        return out_value
    return permute(out_value, *range(axis), first.ndim, *range(axis, first.ndim))


@op("cat", "concat", "concatenate", method=False)
def cat(tensors, dim=0, *, out=None):
    """Pieces of static sizes along `dim`: a power-of-two count of one power-of-two size, stacked next to `dim`
    and merged into it (a reshape Triton can lower); else `concat_p` (gathers, any static sizes)."""
    if out is not None:
        raise TracingError("torch.cat(..., out=) is not supported inside a tile loop; assign the result")
    values = _values("cat", tensors)
    first = values[0]
    if first.ndim == 0:
        raise ShapeError("torch.cat: zero-dimensional values cannot be concatenated; use torch.stack")
    (axis,) = axes_of(first, dim)
    for v in values[1:]:
        if v.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(v.shape, first.shape)) if i != axis):
            raise ShapeError(f"torch.cat: the pieces must match except along dimension {dim}, got "
                             f"{_shape_text(first)} and {_shape_text(v)}")
    sizes = [v.shape[axis] for v in values]
    if any(isinstance(s, TileDim) for s in sizes):
        raise ShapeError(f"torch.cat along dimension {dim}, which a tile walks: tiles cannot be concatenated; "
                         "concatenate along a dimension of static size (e.g. one loaded whole with `:`)")
    if len(values) == 1:
        return first
    if len(set(sizes)) != 1 or not (_power_of_two(sizes[0]) and _power_of_two(len(values))):
        return apply(concat_p, *values, axis=axis)
    stacked = stack(values, axis)
    shape = list(first.shape)
    shape[axis] = sizes[0] * len(values)
    return reshape(stacked, shape)


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


@op("flip")
def flip(x, *dims):
    """`x` reversed along `dims` (for a tile: its valid elements, as torch reverses the slice)."""
    x = value_of(x)
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = tuple(dims[0])
    if not dims:
        raise TracingError("torch.flip needs the dimensions to flip (dims=...)")
    axes = [axes_of(x, d)[0] for d in dims]
    if len(set(axes)) != len(axes):
        raise ShapeError(f"torch.flip: a dimension appears more than once in dims={list(dims)}")
    for axis in axes:
        x = apply(flip_p, x, axis=axis)
    return x


def join(a, b):
    """Two values of one dtype (broadcast together) along a new last axis of size 2."""
    a, b = value_of(a), value_of(b)
    if not (isinstance(a, DeviceValue) and isinstance(b, DeviceValue)):
        raise TracingError("join takes two device values")
    if a.dtype != b.dtype:
        raise TracingError(f"join needs two values of one dtype, got {a.dtype} and {b.dtype}; cast one with .to()")
    shape = broadcast_shapes(a.shape, b.shape)
    if shape is None:
        raise ShapeError(f"join: shapes {_shape_text(a)} and {_shape_text(b)} don't broadcast")
    return stack_last([expand(a, shape), expand(b, shape)])


def split(x):
    """A value whose last dimension has size 2 -> its two halves (x[..., 0], x[..., 1])."""
    x = value_of(x)
    if isinstance(x, Tile) or not isinstance(x, DeviceValue):
        raise TracingError("split takes a device value")
    if not x.shape or x.shape[-1] != 2:
        raise ShapeError(f"split needs a value whose last dimension has size 2, got shape {_shape_text(x)}; "
                         "reshape it to [..., 2] first")
    return apply(split_p, x)
