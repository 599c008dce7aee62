"""Torch's accumulating scatters on host tensors inside a tile loop, lowered to atomics.

`out.index_add_(dim, idx, src)` adds `src` into the rows `idx` names along `dim` (the other dims
whole); `out.scatter_add_(dim, idx, src)` / `scatter_reduce_(dim, idx, src, "sum" | "amax" | "amin")`
update `out[..., idx[i, j], ...]` lane by lane. A dim of `idx` walked by a tile stands for that
tile's own indices (a tile of `idx` is a window of the whole one), so each spelling means what
torch means on the whole tensors.
"""
from __future__ import annotations

import torch

from ..errors import ShapeError, TracingError
from . import state as st
from .atomics import atomic
from .indexing import Point, tensor_var
from .primitives import broadcast_to_p, expand_dims_p, iota_p, tile_index_p
from .proxies import DeviceValue, HostTensor, Tile, apply, op
from .types import TileDim

REDUCE = {"sum": "atomic_add", "amax": "atomic_max", "amin": "atomic_min"}


def _text(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _target(method: str, tensor):
    if not isinstance(tensor, (HostTensor, torch.Tensor)):
        raise TracingError(f"Tensor.{method} inside a tile loop updates a tensor in memory (a kernel argument "
                           "or a tensor made on the host), not a device value")
    return tensor_var(tensor).type


def _index(method: str, index):
    if isinstance(index, Tile):
        index = index.index
    if not isinstance(index, DeviceValue) or index.dtype.is_floating_point or index.dtype == torch.bool:
        raise TracingError(f"Tensor.{method}: the index is an integer device value (a tile of an index tensor)")
    return index


def _dim(method: str, dim, rank: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or not -rank <= dim < max(rank, 1):
        raise ShapeError(f"Tensor.{method}: dim={dim!r} is out of range for a {rank}-d tensor")
    return dim % max(rank, 1)


@op("index_add_", method=False)
def index_add_(tensor, dim, index, source, *, alpha=1):
    """out[..., idx[i], ...] += alpha * source[..., i, ...] along `dim`."""
    target = _target("index_add_", tensor)
    dim = _dim("index_add_", dim, target.rank)
    index = _index("index_add_", index)
    if index.ndim != 1:
        raise ShapeError(f"Tensor.index_add_: the index is 1-d, got shape {_text(index.shape)}")
    want = tuple(target.shape[:dim]) + index.shape + tuple(target.shape[dim + 1:])
    shape = source.shape if isinstance(source, DeviceValue) else None
    if shape != want:
        raise ShapeError(f"Tensor.index_add_: the source has shape {_text(shape or ())} but the index needs "
                         f"{_text(want)} (the other dims whole); to add a tile of them use "
                         "tl.atomic_add(out, [idx, tile, ...], value)")
    if alpha != 1:
        source = source * alpha
    atomic("atomic_add", tensor, [slice(None)] * dim + [index], source)
    return tensor


def _coordinates(target, dim: int, index):
    """One coordinate tensor per target axis, each of the index's shape: lane (i, j, ...) updates
    target[c0, c1, ...] with c_dim = index and c_k its position along axis k (a tile's own indices)."""
    shape, coords = index.shape, []
    for axis, size in enumerate(shape):
        if axis == dim:
            coords.append(index)
            continue
        if isinstance(size, TileDim):
            extent = st.require().blocks[size.block].extent
            line = apply(tile_index_p, st.require().tile_vars[size.tile])
        else:
            extent, line = size, apply(iota_p, start=0, stop=size, dtype=torch.int32)
        if extent is not None and extent > target.shape[axis]:
            raise ShapeError(f"the index covers {extent} positions of dim {axis}, but the target has "
                             f"{target.shape[axis]}")
        for at in range(len(shape)):
            if at != axis:
                line = apply(expand_dims_p, line, axis=at)
        coords.append(apply(broadcast_to_p, line, shape=tuple(shape)))
    return coords


def _scatter(method: str, name: str, tensor, dim, index, src):
    target = _target(method, tensor)
    index = _index(method, index)
    dim = _dim(method, dim, target.rank)
    if index.ndim != target.rank:
        raise ShapeError(f"Tensor.{method}: index of rank {index.ndim} for a {target.rank}-d tensor (as torch, "
                         "the same rank)")
    if isinstance(src, DeviceValue) and src.shape != index.shape:
        raise ShapeError(f"Tensor.{method}: src has shape {_text(src.shape)} but the index {_text(index.shape)}; "
                         "give them one shape")
    atomic(name, tensor, [Point(c) for c in _coordinates(target, dim, index)], src)
    return tensor


@op("scatter_add_", method=False)
def scatter_add_(tensor, dim, index, src):
    """out[index[i, j]][j] += src[i, j] (dim 0; likewise for any dim)."""
    return _scatter("scatter_add_", "atomic_add", tensor, dim, index, src)


@op("scatter_reduce_", method=False)
def scatter_reduce_(tensor, dim, index, src, reduce, *, include_self=True):
    """scatter_add_ with `reduce` "sum", "amax" or "amin" (include_self=True: the target's values take part)."""
    if reduce not in REDUCE:
        raise TracingError(f"Tensor.scatter_reduce_(reduce={reduce!r}) inside a tile loop: atomics give "
                           f"{', '.join(map(repr, REDUCE))}")
    if not include_self:
        raise TracingError("Tensor.scatter_reduce_(include_self=False) inside a tile loop: fill the target with "
                           "the reduction's identity first and use include_self=True")
    return _scatter("scatter_reduce_", REDUCE[reduce], tensor, dim, index, src)
