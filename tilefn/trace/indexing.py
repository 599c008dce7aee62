"""Loads and stores: indexing host tensors with tiles inside a tile loop.

An index is a tuple of entries, one per axis (plus `("new",)` for None):
- `("tile",)`, or `("tile", size)` for a tile whose range may run past the axis's `size` (lanes at or
  past it are masked off: loads read 0, stores drop them);
- `("slice", start, stop)`, `("int", i)`, `("scalar",)` (a 0-d device value);
- `("gather",)`: a tensor of indices, its dims placed where it stands; `("gather", "same")`: one more
  over the same result axes as the gather before it (index tensors that broadcast together);
- `("point",)`: a coordinate tensor of the access's whole shape (the scatter spellings give one per
  axis, so lane i writes target[c0[i], c1[i], ...]).
Entries of `OPERAND_KINDS` take one input each, in order after the target.
"""
from __future__ import annotations

import torch

from ..errors import RankMismatch, ShapeError, TracingError
from .host import const_var
from .ops.creation import full_like_shape
from . import state as st
from .ir import Var
from .device_slices import device_slice_positions, is_device_slice
from .jagged import lane_mask
from .primitives import broadcast_to_p, convert_p, iota_p, load_p, store_p
from .proxies import HOOKS, DeviceValue, HostTensor, Tile, apply, check_in_scope
from .sizes import structure
from .scalars import RuntimeScalar
from .types import broadcast_shapes
from .unmerged import Unmerged

OPERAND_KINDS = ("tile", "scalar", "gather", "point")


def tensor_var(tensor):
    return tensor.ir_var if isinstance(tensor, HostTensor) else const_var(tensor)


def _tile_entry(tile: Tile, size: int) -> tuple:
    """A tile's index entry on an axis of `size`: bounded by it when its static range runs past it (as
    Helion, which masks such accesses: the tile of `[x | y]` reading `x`). A dynamic range is trusted."""
    end = tile.static_end
    return ("tile", size) if end is not None and end > size else ("tile",)


def _strided(start: int, count: int, step: int) -> DeviceValue:
    """The int32 positions start, start + step, ... (`count` of them) a strided slice reads."""
    if count == 0:
        raise ShapeError("a strided slice selecting no element inside a tile loop")
    return apply(iota_p, start=0, stop=count, dtype=torch.int32) * step + start


class Point:
    """An index entry of the scatter spellings: a coordinate tensor of the access's whole shape."""

    def __init__(self, value: DeviceValue):
        self.value = value


def _point_spec(tensor_type, index):
    """One Point per axis, all of one shape: lane i of the access is tensor[c0[i], c1[i], ...]."""
    shapes = {p.value.shape for p in index if isinstance(p, Point)}
    if len(index) != tensor_type.rank or not all(isinstance(p, Point) for p in index) or len(shapes) != 1:
        raise ShapeError("point coordinates index every axis, each of one shape")
    return (("point",),) * len(index), [p.value for p in index], shapes.pop()


def index_spec(tensor_type, index):
    """Normalise a Python index into (entries, index inputs, result shape)."""
    entries, inputs, shape, _ = spec_and_bounds(tensor_type, index)
    return entries, inputs, shape


def spec_and_bounds(tensor_type, index):
    """index_spec's (entries, inputs, shape) and the lanes whose index tensors stay inside the tensor's
    bounds (None when no index tensor of the user's is used): lanes outside are masked as a tile's past
    its axis are (loads read 0, stores drop them), so no position computed on the device reads or writes
    outside the tensor."""
    index = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, Point) for i in index):
        return (*_point_spec(tensor_type, index), None)
    consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise ShapeError("an index can hold at most one `...`")
    rank = tensor_type.rank
    if consumed > rank:
        raise RankMismatch(f"indexing a {rank}-d tensor with {consumed} indices: {consumed - rank} too many")
    expanded = []
    for item in index:
        if item is Ellipsis:
            expanded.extend([slice(None)] * (rank - consumed))
        else:
            expanded.append(item)
    expanded.extend([slice(None)] * (rank - sum(1 for i in expanded if i is not None)))
    parts, axis = [], 0  # per entry: (entry, its input or None, its result dims, whether a user's index tensor)
    for item in expanded:
        if item is None:
            parts.append((("new",), None, [1], False))
            continue
        parts.append(_part(item, tensor_type.shape[axis], axis))
        axis += 1
    parts = _broadcast_tensor_indices(parts)
    entries = tuple(entry for entry, _, _, _ in parts)
    inputs = [x for _, x, _, _ in parts if x is not None]
    shape = tuple(d for _, _, dims, _ in parts for d in dims)
    return entries, inputs, shape, _in_bounds(parts, tensor_type.shape, len(shape))


def _in_bounds(parts, sizes, rank):
    """The lanes where every index tensor of the user's lies in [0, size) of its axis, on the result's axes."""
    mask, axis, position, gather_at = None, 0, 0, 0
    for entry, value, dims, users in parts:
        if entry == ("gather",):
            gather_at = position
        if users:
            inside = (value >= 0) & (value < sizes[axis])
            at = gather_at if entry == ("gather", "same") else position
            inside = inside[(None,) * at + (slice(None),) * inside.ndim + (None,) * (rank - at - inside.ndim)]
            mask = inside if mask is None else mask & inside
        position += len(dims)
        axis += entry != ("new",)
    return mask


def _part(item, size: int, axis: int) -> tuple:
    """One axis's index entry, input, result dims and whether it is an index tensor of the user's."""
    if isinstance(item, Tile):
        check_in_scope(item)
        spans_axis = item.static_end is not None and structure(item.static_end) == structure(size)
        if not spans_axis and size == 1 and (item.end_bound is None or item.end_bound > 1):
            return ("slice", 0, 1), None, [1], False  # a size-1 axis broadcasts (torch's x[0:n], Helion's)
        return _tile_entry(item, size), item, [item.dim], False
    if isinstance(item, slice):
        if is_device_slice(item):
            positions = device_slice_positions(item)
            return ("gather",), positions, list(positions.shape), True
        if item.step is not None and item.step <= 0:
            raise ShapeError("slice step must be positive (as in torch); flip the result with torch.flip")
        start, stop, step = item.indices(size)
        if step == 1:
            return ("slice", start, stop), None, [stop - start], False
        positions = _strided(start, len(range(start, stop, step)), step)  # a gather of start, start + step, ...
        return ("gather",), positions, list(positions.shape), False
    if isinstance(item, bool) or not isinstance(item, (int, DeviceValue)):
        raise ShapeError(f"can't index a tensor with {type(item).__name__} inside a tile loop")
    if isinstance(item, int):
        value = item + size if item < 0 else item
        if not 0 <= value < size:
            raise ShapeError(f"index {item} is out of bounds for dimension {axis} of size {size}")
        return ("int", value), None, [], False
    check_in_scope(item)
    if item.dtype.is_floating_point or item.dtype == torch.bool:
        raise ShapeError(f"tensors used as indices must be integers, got {item.dtype}")
    if item.ndim == 0:
        return ("scalar",), item, [], False
    return ("gather",), item, list(item.shape), True


def _broadcast_tensor_indices(parts: list) -> list:
    """Several index tensors: 1-d ones each stand for their own axes (an outer product, as Helion's
    `x[rows, cols]` of two aranges); when one has 2+ dims they broadcast together, as torch's, and stand
    once where the first is (the others: `("gather", "same")`, broadcast to the common shape)."""
    tensors = [i for i, part in enumerate(parts) if part[3]]
    if len(tensors) < 2 or all(len(parts[i][2]) == 1 for i in tensors):
        return parts
    if tensors != list(range(tensors[0], tensors[-1] + 1)):
        raise ShapeError("index tensors that broadcast together (one has 2+ dims) must stand next to each other "
                         "in the index; index the other axes with tiles, or make every index tensor 1-d")
    shape = broadcast_shapes(*(parts[i][2] for i in tensors))
    if shape is None:
        names = ", ".join("[" + ", ".join(map(str, parts[i][2])) + "]" for i in tensors)
        raise ShapeError(f"index tensors of shapes {names} do not broadcast together")
    out = list(parts)
    for n, i in enumerate(tensors):
        value = parts[i][1]
        if tuple(value.shape) != shape:
            value = apply(broadcast_to_p, value, shape=shape)
        out[i] = (("gather",) if n == 0 else ("gather", "same"), value, list(shape) if n == 0 else [], True)
    return out


def _both(a, b):
    return b if a is None else a if b is None else a & b


def with_lane_mask(shape, extra_mask):
    """The access's extra mask with the jagged tiles' lanes past their ends masked off (`jagged.py`)."""
    lanes = lane_mask(shape)
    if lanes is None:
        return extra_mask
    return lanes if extra_mask is None else extra_mask & lanes


@HOOKS.register("load")
def load(tensor, index, extra_mask=None):
    var = tensor_var(tensor)
    entries, inputs, shape, inside = spec_and_bounds(var.type, index)
    extra_mask = with_lane_mask(shape, _both(extra_mask, inside))
    if extra_mask is not None:
        inputs.append(extra_mask)
    return apply(load_p, var, *inputs, shape=shape, dtype=var.type.dtype, index=entries,
                 masked=extra_mask is not None)


@HOOKS.register("store")
def store(tensor, index, value, extra_mask=None):
    var = tensor_var(tensor)
    if isinstance(value, DeviceValue):
        check_in_scope(value)  # (a value from a finished loop: say so before its shape does not fit)
    entries, inputs, shape, inside = spec_and_bounds(var.type, index)
    value = _as_stored_value(value, shape, var.type.dtype)
    _refuse_gathered_update(var, entries, inputs, value)
    extra_mask = with_lane_mask(shape, _both(extra_mask, inside))
    inputs.append(value)
    if extra_mask is not None:
        inputs.append(extra_mask)
    apply(store_p, var, *inputs, index=entries, masked=extra_mask is not None)


def _as_stored_value(value, shape, dtype):
    """Broadcast and cast what is stored to the destination's shape and dtype, as torch's setitem."""
    if isinstance(value, (int, float, bool, RuntimeScalar)):
        return full_like_shape(shape, value, dtype)
    if isinstance(value, Unmerged):
        value.refuse()
    if isinstance(value, HostTensor) or isinstance(value, torch.Tensor):  # (Helion's `dst[i] = val`: all of val)
        value = load(value, (slice(None),) * value.ndim)
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


def _refuse_gathered_update(var, entries, inputs, value) -> None:
    """`out[idx] += v` through a tensor index: a load, an update and a store that race where indices
    repeat (across lanes or programs), silently losing updates. Refused: atomics say it right."""
    if not any(entry[0] == "gather" for entry in entries):
        return
    producers = {out: eqn for eqn in st.require().region.eqns for out in eqn.outputs}
    index_vars = [x.ir_var for x in inputs]
    pending, seen = [value.ir_var], set()
    while pending:
        eqn = producers.get(pending.pop())
        if eqn is None or id(eqn) in seen:
            continue
        seen.add(id(eqn))
        if (eqn.prim is load_p and eqn.inputs[0] is var and eqn.params["index"] == entries
                and list(eqn.inputs[1:1 + len(index_vars)]) == index_vars):
            raise TracingError(
                "this store writes back a value computed from a load of the same elements through a tensor "
                "index (`out[idx] += v`): where indices repeat, lanes and programs race and updates are "
                "lost. Use tl.atomic_add(out, [idx], v) (hl.atomic_add; tl.atomic_max / atomic_min for "
                "max / min), or out.index_add_(dim, idx, v)")
        pending.extend(a for a in eqn.inputs if isinstance(a, Var))
