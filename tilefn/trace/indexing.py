"""Loads and stores: indexing host tensors with tiles inside a tile loop.

An index is a tuple of entries, one per axis (plus `("new",)` for None): `("tile",)`, `("slice", start,
stop)`, `("int", i)`, `("scalar",)` (a 0-d device value), `("gather",)` (a tensor of indices, its dims
placed where it stands) and `("point",)` (a coordinate tensor of the access's whole shape: the
scatter spellings give one per axis, so lane i writes target[c0[i], c1[i], ...]). Entries of
`OPERAND_KINDS` take one input each, in order after the target.
"""
from __future__ import annotations

import torch

from ..errors import RankMismatch, ShapeError, TracingError
from .host import const_var
from .ops.creation import full_like_shape
from . import state as st
from .ir import Var
from .primitives import broadcast_to_p, convert_p, load_p, store_p
from .proxies import HOOKS, DeviceValue, HostTensor, Tile, apply, check_in_scope
from .types import broadcast_shapes
from .unmerged import Unmerged

OPERAND_KINDS = ("tile", "scalar", "gather", "point")


def tensor_var(tensor):
    return tensor.ir_var if isinstance(tensor, HostTensor) else const_var(tensor)


def _check_tile_fits(tile: Tile, size: int, axis: int):
    begin, end, explicit = tile.static_begin, tile.static_end, tile.explicit_range
    if end is None:
        return
    if (explicit and end > size) or (not explicit and (begin, end) != (0, size)):
        rng = f"[{begin}, {end})" if explicit else f"of size {end}"
        raise ShapeError(f"a tile over a range {rng} indexes dimension {axis}, which has size {size}")


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
    index = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, Point) for i in index):
        return _point_spec(tensor_type, index)
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
    var = tensor_var(tensor)
    entries, inputs, shape = index_spec(var.type, index)
    if extra_mask is not None:
        inputs.append(extra_mask)
    return apply(load_p, var, *inputs, shape=shape, dtype=var.type.dtype, index=entries,
                 masked=extra_mask is not None)


@HOOKS.register("store")
def store(tensor, index, value, extra_mask=None):
    var = tensor_var(tensor)
    entries, inputs, shape = index_spec(var.type, index)
    value = _as_stored_value(value, shape, var.type.dtype)
    _refuse_gathered_update(var, entries, inputs, value)
    inputs.append(value)
    if extra_mask is not None:
        inputs.append(extra_mask)
    apply(store_p, var, *inputs, index=entries, masked=extra_mask is not None)


def _as_stored_value(value, shape, dtype):
    """Broadcast and cast what is stored to the destination's shape and dtype, as torch's setitem."""
    if isinstance(value, (int, float, bool)):
        return full_like_shape(shape, value, dtype)
    if isinstance(value, Unmerged):
        value.refuse()
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
