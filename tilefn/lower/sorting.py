"""Lowering of sort, topk (values and indices) and gather.

Sorting uses packed keys: each value's order-preserving 32-bit key (a float's bits with the magnitude bits
of negatives flipped; NaN made one positive NaN, above +inf, and -0.0 made 0.0, as torch orders them) in the
high half of an int64 and its lane position in the low half, so one `tl.sort` / `tl.topk` of int64 keys
orders values and carries their indices, ties broken by position (a stable sort). Descending sorts store
LANES-1-position, so equal values still come in position order. Padded lanes get the key that sorts last
and positions past every valid one, so padding never wins. The smallest k are `~topk(~keys)`.
"""
from __future__ import annotations

import math

import torch

from ..trace.queries import next_power_of_2
from . import interpreted
from .emit import Emitter, tl_dtype


def _order_key(em: Emitter, x) -> str:
    """An int64 expression ordering `x`'s values as torch.sort does (integers: the value itself)."""
    dtype = x.type.dtype
    if not dtype.is_floating_point:
        return f"{em(x)}.to(tl.int64)"
    value = em.fresh("sort_value")
    em.emit(f"{value} = {em.converted(em(x), dtype, torch.float32)}")
    bits = em.fresh("sort_bits")
    em.emit(f"{bits} = tl.where({value} != {value}, float('nan'), tl.where({value} == 0, 0.0, {value}))"
            ".to(tl.int32, bitcast=True)")
    return f"tl.where({bits} < 0, {bits} ^ 0x7FFFFFFF, {bits}).to(tl.int64)"


def _packed(em: Emitter, x, descending: bool) -> tuple[str, int]:
    """The packed int64 keys of `x` along its last axis (padding last in the order asked for), and the lanes."""
    shape, rank = x.type.shape, x.type.rank
    lanes = em.lanes(shape[-1])
    key = em.fresh("sort_key")
    em.emit(f"{key} = {_order_key(em, x)}")
    mask = em.dim_mask(shape[-1])
    if mask is not None:
        em.emit(f"{key} = tl.where({em.expand(mask, rank - 1, rank)}, {key}, {-2**31 if descending else 2**31 - 1})")
    position = em.expand(f"tl.arange(0, {lanes}).to(tl.int64)", rank - 1, rank)
    low = f"({lanes - 1} - {position})" if descending else position
    packed = em.fresh("sort_packed")
    em.emit(f"{packed} = ({key} << 32) | {low}")
    return packed, lanes


def _unpack(em: Emitter, eqn, packed: str, descending: bool, lanes: int) -> None:
    """Values and int64 indices back from sorted packed keys."""
    dtype = eqn.outputs[0].type.dtype
    key = em.fresh("sorted_key")
    em.emit(f"{key} = ({packed} >> 32).to(tl.int32)")
    if dtype.is_floating_point:
        bits = f"tl.where({key} < 0, {key} ^ 0x7FFFFFFF, {key}).to(tl.float32, bitcast=True)"
        em.assign(eqn.outputs[0], em.converted(bits, torch.float32, dtype))
    elif dtype == torch.bool:
        em.assign(eqn.outputs[0], f"({key} != 0)")
    else:
        em.assign(eqn.outputs[0], f"{key}.to({tl_dtype(dtype)})")
    low = em.fresh("sorted_position")
    em.emit(f"{low} = {packed} - (({packed} >> 32) << 32)")
    em.assign(eqn.outputs[1], f"{lanes - 1} - {low}" if descending else low)


def _ascending(em: Emitter, packed: str, shape, flipped: bool) -> str:
    """Keys sorted by the interpreter's bitonic network (descending: the complements sorted ascending)."""
    if not flipped:
        return interpreted.sort_ascending(em, packed, shape)
    return f"~{interpreted.sort_ascending(em, f'~{packed}', shape)}"


def lower_sort(em: Emitter, eqn) -> None:
    (x,) = eqn.inputs
    descending = eqn.params["descending"]
    packed, lanes = _packed(em, x, descending)
    ordered = em.fresh("sorted")
    if em.interpret:
        em.emit(f"{ordered} = {_ascending(em, packed, x.type.shape, flipped=descending)}")
    else:
        em.emit(f"{ordered} = tl.sort({packed}, dim={x.type.rank - 1}, descending={descending})")
    _unpack(em, eqn, ordered, descending, lanes)


def lower_topk(em: Emitter, eqn) -> None:
    (x,) = eqn.inputs
    largest, k = eqn.params["largest"], next_power_of_2(eqn.params["k"])
    packed, lanes = _packed(em, x, descending=largest)
    top = em.fresh("top")
    if em.interpret:
        ordered = _ascending(em, packed, x.type.shape, flipped=largest)
        em.emit(f"{top} = {interpreted.first_lanes(em, ordered, x.type.shape, k)}")
    elif largest:
        em.emit(f"{top} = tl.topk({packed}, {k}, dim={x.type.rank - 1})")
    else:
        em.emit(f"{top} = ~tl.topk(~{packed}, {k}, dim={x.type.rank - 1})")
    _unpack(em, eqn, top, largest, lanes)


def lower_gather(em: Emitter, eqn) -> None:
    """tl.gather with the index clamped into the source's lanes (padded index lanes may hold anything)."""
    src, index = eqn.inputs
    axis = eqn.params["axis"]
    lanes = em.lanes(src.type.shape[axis])
    if lanes == 1:  # every index is 0: a broadcast (Triton 3.6 asserts on a gather from one lane, sm_90)
        em.assign(eqn.outputs[0], f"tl.broadcast_to({em(src)}, {em.shape_expr(index.type.shape)})")
        return
    clamped = f"tl.minimum(tl.maximum({em(index)}, 0), {lanes - 1}).to(tl.int32)"
    index_elements = math.prod(em.lanes(d) for d in index.type.shape)
    if index_elements * lanes <= ONE_HOT_ELEMENTS and src.type.dtype != torch.bool:
        em.assign(eqn.outputs[0], _one_hot_gather(em(src), clamped, axis, lanes, len(index.type.shape)))
        return
    em.assign(eqn.outputs[0], f"tl.gather({em(src)}, {clamped}, {axis})")


# Triton 3.6 (sm_90) asserts in OptimizeThreadLocality on tl.gather from a small source into a longer index
# (a [2, 2] row tile gathered by a [2, 32] index, 2+ warps; drawn by the tests): gathers with at most this
# many index elements x source lanes select by comparison instead (one match per output element)
ONE_HOT_ELEMENTS = 32768


def _one_hot_gather(src: str, index: str, axis: int, lanes: int, rank: int) -> str:
    """out[..., k, ...] = src[..., index[..., k, ...], ...] as sum over n of where(index == n, src[n], 0):
    the index gets a new axis after `axis` holding n, the source one before its n axis."""
    index_e, src_e = f"tl.expand_dims({index}, {axis + 1})", f"tl.expand_dims({src}, {axis})"
    shape = [1] * (rank + 1)
    shape[axis + 1] = lanes
    positions = f"tl.reshape(tl.arange(0, {lanes}), {shape})"
    return f"tl.sum(tl.where({index_e} == {positions}, {src_e}, 0), axis={axis + 1})"
