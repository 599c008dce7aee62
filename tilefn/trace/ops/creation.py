"""Device values made from nothing: zeros, ones, full, empty, the `*_like`/`new_*` forms, arange."""
from __future__ import annotations

import torch

from ...errors import ShapeError
from ..device_slices import ADVICE, block_span, static_length
from ..primitives import full_p, iota_p
from .. import state as st
from ..proxies import BlockSize, BlockValue, DeviceValue, Tile, apply, op
from ..scalars import RuntimeScalar
from ..types import TileDim, lanes_dim
from .casts import to
from .views import expand


def shape_entries(shape) -> tuple:
    """A shape given as ints and tiles (as Helion's `hl.zeros([tile_m, tile_n])`)."""
    if isinstance(shape, (int, Tile, BlockSize, BlockValue)):
        shape = [shape]
    out = []
    for s in shape:
        if isinstance(s, Tile):
            out.append(s.dim)
        elif isinstance(s, (int, TileDim)) and not isinstance(s, bool):
            out.append(s)
        elif isinstance(s, (BlockSize, BlockValue)):
            out.append(_block_dim(s.block))
        else:
            raise ShapeError(f"shape entries must be ints or tiles, got {type(s).__name__}")
    return tuple(out)


def _block_dim(block: int):
    """A block size as a shape entry: the tile of the innermost open loop it sizes, else (a value made
    before such a loop) the block's full lanes (`tilefn.trace.block_lanes`)."""
    tile = next((t for t in reversed(st.require().open_tiles) if t.dim.block == block), None)
    return tile.dim if tile is not None else lanes_dim(block)


def _block_arange(block: int, dtype) -> DeviceValue:
    """`torch.arange(bs)`: 0, 1, ... on the lanes of the innermost open tile loop `block` sizes; outside
    any (before it, or a block no loop uses: Helion's persistent grouped GEMM), on the block's full lanes."""
    tile = next((t for t in reversed(st.require().open_tiles) if t.dim.block == block), None)
    if tile is None:
        return apply(iota_p, start=0, stop=lanes_dim(block), dtype=dtype)
    return to(tile.index - tile.begin, dtype)


def full_like_shape(shape, value, dtype):
    if isinstance(value, DeviceValue):
        return expand(to(value, dtype), shape)
    if isinstance(value, RuntimeScalar):
        return expand(value.device_value(dtype), shape)
    return apply(full_p, shape=tuple(shape), value=value, dtype=dtype)


def _shape_args(size):
    return size[0] if len(size) == 1 and isinstance(size[0], (list, tuple, torch.Size)) else size


@op("zeros", method=False)
def zeros(*size, dtype=None, **kwargs):
    return full_like_shape(shape_entries(_shape_args(size)), 0, dtype or torch.float32)


@op("ones", method=False)
def ones(*size, dtype=None, **kwargs):
    return full_like_shape(shape_entries(_shape_args(size)), 1, dtype or torch.float32)


@op("empty", method=False)
def empty(*size, dtype=None, **kwargs):
    return zeros(*size, dtype=dtype)


@op("full", method=False)
def full(size, fill_value, *, dtype=None, **kwargs):
    if dtype is None:
        dtype = torch.float32 if isinstance(fill_value, (float, RuntimeScalar)) else (torch.bool if isinstance(fill_value, bool) else torch.int64)
    return full_like_shape(shape_entries(size), fill_value, dtype)


@op("zeros_like", "empty_like", method=False)
def zeros_like(x, *, dtype=None, **kwargs):
    return full_like_shape(x.shape, 0, dtype or x.dtype)


@op("ones_like", method=False)
def ones_like(x, *, dtype=None, **kwargs):
    return full_like_shape(x.shape, 1, dtype or x.dtype)


@op("full_like", method=False)
def full_like(x, fill_value, *, dtype=None, **kwargs):
    return full_like_shape(x.shape, fill_value, dtype or x.dtype)


@op("new_zeros", "new_empty")
def new_zeros(x, size, *, dtype=None, **kwargs):
    return full_like_shape(shape_entries(size), 0, dtype or x.dtype)


@op("new_ones")
def new_ones(x, size, *, dtype=None, **kwargs):
    return full_like_shape(shape_entries(size), 1, dtype or x.dtype)


@op("new_full")
def new_full(x, size, fill_value, *, dtype=None, **kwargs):
    return full_like_shape(shape_entries(size), fill_value, dtype or x.dtype)


def _device_arange(start, end, step, dtype):
    """arange(start, start + k): k lanes from a device scalar start (`tile.begin * 2`, k = `tile.block_size * 2`);
    of `step` times an open tile's block size, lanes of that tile (Helion's `arange(t.begin, t.begin + t.block_size)`
    stored into `out[t]`)."""
    tile = block_span(start, end, step) if isinstance(step, int) and step > 0 else None
    if tile is not None:
        return to((tile.index - tile.begin) * step + start, dtype)
    length = static_length(start, end)
    if length is None or not isinstance(step, int) or isinstance(step, bool) or step <= 0:
        raise ShapeError(f"arange with bounds computed on the device needs a positive int step and a length known "
                         f"while tracing; {ADVICE}")
    count = len(range(0, length, step))
    if count == 0:
        raise ShapeError("arange with bounds computed on the device selects no element")
    return to(apply(iota_p, start=0, stop=count, dtype=torch.int32) * step + start, dtype)


@op("arange", method=False)
def arange(start, end=None, step=1, *, dtype=None, **kwargs):
    if end is None and isinstance(start, (BlockSize, BlockValue)):
        return _block_arange(start.block, dtype or torch.int32)
    if end is None:
        start, end = 0, start
    if isinstance(start, DeviceValue) or isinstance(end, DeviceValue):
        return _device_arange(start, end, step, dtype or torch.int32)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end, step)) or step == 0:
        raise ShapeError("arange inside a tile loop needs static int bounds and a nonzero int step")
    if step == 1:
        return apply(iota_p, start=start, stop=end, dtype=dtype or torch.int32)
    count = len(range(start, end, step))
    return to(apply(iota_p, start=0, stop=count, dtype=torch.int32) * step + start, dtype or torch.int32)
