"""Loads and stores: indexing host tensors with tiles inside a tile loop."""
from __future__ import annotations

import torch

from ..errors import ShapeError, TracingError
from .host import const_var
from .ops.creation import full_like_shape
from .primitives import broadcast_to_p, convert_p, load_p, store_p
from .proxies import HOOKS, DeviceValue, HostTensor, Tile, apply, check_in_scope
from .types import broadcast_shapes


def _tensor_var(tensor):
    return tensor.ir_var if isinstance(tensor, HostTensor) else const_var(tensor)


def _check_tile_fits(tile: Tile, size: int, axis: int):
    begin, end, explicit = tile.static_begin, tile.static_end, tile.explicit_range
    if end is None:
        return
    if (explicit and end > size) or (not explicit and (begin, end) != (0, size)):
        rng = f"[{begin}, {end})" if explicit else f"of size {end}"
        raise ShapeError(f"a tile over a range {rng} indexes dimension {axis}, which has size {size}")


def index_spec(tensor_type, index):
    """Normalise a Python index into (entries, index inputs, result shape)."""
    index = index if isinstance(index, tuple) else (index,)
    consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise ShapeError("an index can hold at most one `...`")
    rank = tensor_type.rank
    if consumed > rank:
        raise ShapeError(f"indexing a {rank}-d tensor with {consumed} indices")
    expanded = []
    for item in index:
        if item is Ellipsis:
            expanded.extend([slice(None)] * (rank - consumed))
        else:
            expanded.append(item)
    expanded.extend([slice(None)] * (rank - sum(1 for i in expanded if i is not None)))
    entries, inputs, shape, axis = [], [], [], 0
    for item in expanded:
        if item is None:
            entries.append(("new",))
            shape.append(1)
            continue
        size = tensor_type.shape[axis]
        if isinstance(item, Tile):
            _check_tile_fits(item, size, axis)
            check_in_scope(item)
            entries.append(("tile",))
            inputs.append(item)
            shape.append(item.dim)
        elif isinstance(item, slice):
            start, stop, step = item.indices(size)
            if step != 1 or any(isinstance(v, (DeviceValue, Tile)) for v in (item.start, item.stop)):
                raise ShapeError("slices inside a tile loop need static bounds and step 1")
            entries.append(("slice", start, stop))
            shape.append(stop - start)
        elif isinstance(item, bool) or not isinstance(item, (int, DeviceValue)):
            raise ShapeError(f"can't index a tensor with {type(item).__name__} inside a tile loop")
        elif isinstance(item, int):
            value = item + size if item < 0 else item
            if not 0 <= value < size:
                raise ShapeError(f"index {item} is out of bounds for dimension {axis} of size {size}")
            entries.append(("int", value))
        else:
            check_in_scope(item)
            if item.dtype.is_floating_point or item.dtype == torch.bool:
                raise ShapeError(f"tensors used as indices must be integers, got {item.dtype}")
            entries.append(("scalar",) if item.ndim == 0 else ("gather",))
            inputs.append(item)
            shape.extend(item.shape)
        axis += 1
    if sum(1 for e in entries if e[0] == "gather") > 1:
        raise ShapeError("at most one tensor index per load or store is supported")
    return tuple(entries), inputs, tuple(shape)


@HOOKS.register("load")
def load(tensor, index, extra_mask=None):
    var = _tensor_var(tensor)
    entries, inputs, shape = index_spec(var.type, index)
    if extra_mask is not None:
        inputs.append(extra_mask)
    return apply(load_p, var, *inputs, shape=shape, dtype=var.type.dtype, index=entries,
                 masked=extra_mask is not None)


@HOOKS.register("store")
def store(tensor, index, value, extra_mask=None):
    var = _tensor_var(tensor)
    entries, inputs, shape = index_spec(var.type, index)
    value = _as_stored_value(value, shape, var.type.dtype)
    inputs.append(value)
    if extra_mask is not None:
        inputs.append(extra_mask)
    apply(store_p, var, *inputs, index=entries, masked=extra_mask is not None)


def _as_stored_value(value, shape, dtype):
    """Broadcast and cast what is stored to the destination's shape and dtype, as torch's setitem."""
    if isinstance(value, (int, float, bool)):
        return full_like_shape(shape, value, dtype)
    if not isinstance(value, DeviceValue):
        raise TracingError(f"can't store a {type(value).__name__} into a tensor inside a tile loop")
    if broadcast_shapes(value.shape, shape) != shape:
        names = lambda s: "[" + ", ".join(map(str, s)) + "]"  # noqa: E731
        raise ShapeError(f"storing a value of shape {names(value.shape)} into a slice of shape {names(shape)}")
    if value.dtype != dtype:
        value = apply(convert_p, value, dtype=dtype)
    if value.shape != shape:
        value = apply(broadcast_to_p, value, shape=shape)
    return value
