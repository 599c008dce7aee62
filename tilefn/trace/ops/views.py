"""Views of device values: unsqueeze, squeeze, reshape, permute, transpose, expand, `v[:, None]`, `v[:, -1]`."""
from __future__ import annotations

import math

import torch

from ...errors import ShapeError
from .. import state as st
from ..primitives import (broadcast_to_p, expand_dims_p, iota_p, permute_p, reduce_max_p, reduction_identity, reshape_p,
                          squeeze_p)
from ..proxies import Tile, apply, op
from ..types import TileDim, broadcast_shapes
from .casts import to, value_of


def axes_of(x, dim):
    """The sorted, non-negative axes `dim` (None: all, an int, or a list of them) names in `x`."""
    if dim is None:
        return list(range(x.ndim))
    dims = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    for d in dims:
        if not -x.ndim <= d < max(x.ndim, 1):
            raise ShapeError(f"dimension {d} is out of range for a {x.ndim}-d value")
    return sorted({d % max(x.ndim, 1) for d in dims})


@op("unsqueeze")
def unsqueeze(x, dim):
    x = value_of(x)
    return apply(expand_dims_p, x, axis=dim % (x.ndim + 1))


@op("squeeze")
def squeeze(x, dim=None):
    x = value_of(x)
    axes = [i for i, d in enumerate(x.shape) if d == 1] if dim is None else axes_of(x, dim)
    for axis in reversed(axes):
        if x.shape[axis] == 1:
            x = apply(squeeze_p, x, axis=axis)
    return x


def _shape_arg(shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (list, tuple)) else shape
    return tuple(s.dim if isinstance(s, Tile) else s for s in shape)


@op("reshape", "view")
def reshape(x, *shape):
    x = value_of(x)
    shape = list(_shape_arg(shape))
    static = math.prod(d for d in x.shape if isinstance(d, int))
    symbolic = sorted((d for d in x.shape if isinstance(d, TileDim)), key=lambda d: d.tile)
    if -1 in shape:
        known = math.prod(d for d in shape if isinstance(d, int) and d != -1)
        shape[shape.index(-1)] = static // max(known, 1)
    new_static = math.prod(d for d in shape if isinstance(d, int))
    new_symbolic = sorted((d for d in shape if isinstance(d, TileDim)), key=lambda d: d.tile)
    if new_static != static or new_symbolic != symbolic:
        raise ShapeError(f"can't reshape a value of shape {list(map(str, x.shape))} to {list(map(str, shape))}")
    if tuple(shape) == x.shape:
        return x
    return apply(reshape_p, x, shape=tuple(shape))


@op("permute")
def permute(x, *dims):
    dims = tuple(d % x.ndim for d in _shape_arg(dims))
    if sorted(dims) != list(range(x.ndim)):
        raise ShapeError(f"permute needs a permutation of {x.ndim} dimensions, got {list(dims)}")
    return x if dims == tuple(range(x.ndim)) else apply(permute_p, value_of(x), perm=dims)


@op("transpose", "swapaxes")
def transpose(x, dim0, dim1):
    perm = list(range(x.ndim))
    perm[dim0 % x.ndim], perm[dim1 % x.ndim] = perm[dim1 % x.ndim], perm[dim0 % x.ndim]
    return permute(x, *perm)


@op("t")
def t(x):
    return x if x.ndim < 2 else transpose(x, 0, 1)


@op("expand", "broadcast_to")
def expand(x, *shape):
    x = value_of(x)
    shape = _shape_arg(shape)
    shape = tuple(x.shape[i - (len(shape) - x.ndim)] if s == -1 else s for i, s in enumerate(shape))
    if broadcast_shapes(x.shape, shape) != shape:
        raise ShapeError(f"can't expand a value of shape {list(map(str, x.shape))} to {list(map(str, shape))}")
    return x if shape == x.shape else apply(broadcast_to_p, x, shape=shape)


@op("expand_as")
def expand_as(x, other):
    return expand(x, other.shape)


@op("__getitem__")
def getitem(x, index):
    """`v[:, None]`-style views of a device value (full slices, None and `...`) and ints, which select one
    element along their dim (on a tile's dim: 0, its first element, or -1, its last valid one)."""
    value = value_of(x)
    index = index if isinstance(index, tuple) else (index,)
    consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
    out, axis = value, 0
    for item in index:
        if item is None:
            out = apply(expand_dims_p, out, axis=axis)
            axis += 1
        elif item is Ellipsis:
            axis += value.ndim - consumed
        elif isinstance(item, slice) and item == slice(None):
            axis += 1
        elif isinstance(item, int) and not isinstance(item, bool) and axis < out.ndim:
            out = select(out, axis, item)
        else:
            raise ShapeError("device values can only be indexed with `:`, `None`, `...` (to add broadcast "
                             "dimensions) and ints (one element along a dim); load from the host tensor instead")
    return out


def positions(x, axis: int):
    """int64 lane positions along `axis` (0, 1, ... within the value), in `x`'s shape."""
    dim = x.shape[axis]
    if isinstance(dim, TileDim):
        tile = st.require().tiles[dim.tile]
        index = to(tile.index - tile.begin, torch.int64)
    else:
        index = apply(iota_p, start=0, stop=dim, dtype=torch.int64)
    for _ in range(axis):
        index = apply(expand_dims_p, index, axis=0)
    for _ in range(x.ndim - axis - 1):
        index = apply(expand_dims_p, index, axis=index.ndim)
    return apply(broadcast_to_p, index, shape=x.shape)


def select(x, axis: int, i: int):
    """The element at position `i` along `axis` (the axis removed): the only lane a max keeps."""
    dim = x.shape[axis]
    if isinstance(dim, TileDim):
        if i not in (0, -1):
            raise ShapeError(f"index {i} on a tile's dimension: an edge tile may be shorter; only 0 (its first "
                             "element) and -1 (its last valid one) are known to exist")
        tile = st.require().tiles[dim.tile]
        target = 0 if i == 0 else (tile.end - tile.begin - 1)
    elif not -dim <= i < dim:
        raise ShapeError(f"index {i} is out of bounds for a dimension of size {dim}")
    else:
        target = i % dim
    low = False if x.dtype == torch.bool else reduction_identity(reduce_max_p, x.dtype)
    return apply(reduce_max_p, torch.where(positions(x, axis) == target, x, low), axis=axis, keepdim=False)
