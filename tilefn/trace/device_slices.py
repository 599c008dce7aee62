"""Slices whose bounds are device values: `dt_bias[h : h + 1]`, `x[t.begin : t.begin + k]`.

A result's shape is static, so the stop must be the start plus a length known when the kernel is
traced. That is read off the equations that computed them: the stop is `start + k`, `k + start` or
`start - k`, where the start may be computed again in the same way (`t.begin` read twice,
`h * 4 : h * 4 + 4`) and `k` is an int or int arithmetic on block sizes (`t.block_size * 2`: the
block's value in this trace, which the Program is then keyed on, as host code reading a block size:
`host_blocks.py`). The slice reads the positions start, start + step, ... as an index tensor, masked
by the tensor's bounds (`indexing.py`). `hl.arange(start, stop)` with device bounds takes the same
lengths. A length computed from loaded values (`x[starts[i] : ends[i]]`) has no static bound: the
error points at `tl.jagged_tile` (or a tile over the longest length with a mask).
"""
from __future__ import annotations

import torch

from ..errors import ShapeError
from . import state as st
from .host_blocks import host_value
from .ir import Lit, Var
from .primitives import P, block_size_p, convert_p, iota_p
from .proxies import DeviceValue, Tile, apply

_ADD, _SUB = P["add"], P["sub"]
_STATIC_OPS = {P["add"]: lambda a, b: a + b, P["sub"]: lambda a, b: a - b, P["mul"]: lambda a, b: a * b,
               P["floordiv"]: lambda a, b: a // b}
ADVICE = ("write the bounds as s : s + k with k an int or int arithmetic on block sizes (`t.block_size * 2`); "
          "for a length computed from loaded values (offsets), loop over it with tl.jagged_tile(lengths) "
          "(Helion's hl.jagged_tile) and index with start + tile.index")


def _producers() -> dict:
    """Each variable of the open regions -> the equation that made it."""
    out, region = {}, st.require().region
    while region is not None:
        out.update((v, eqn) for eqn in region.eqns for v in eqn.outputs)
        region = region.parent
    return out


def _same(a, b, producers, depth: int = 8) -> bool:
    """Whether atoms `a` and `b` hold one value: the same atom, or results of one pure computation."""
    if a is b or (isinstance(a, Lit) and isinstance(b, Lit) and a == b):
        return True
    ea, eb = producers.get(a), producers.get(b)
    if depth == 0 or ea is None or eb is None or ea.prim is not eb.prim or ea.prim.effectful:
        return False
    return (ea.params == eb.params and len(ea.inputs) == len(eb.inputs) and ea.outputs.index(a) == eb.outputs.index(b)
            and all(_same(x, y, producers, depth - 1) for x, y in zip(ea.inputs, eb.inputs)))


def _int_literal(atom):
    return atom.value if isinstance(atom, Lit) and isinstance(atom.value, int) and not isinstance(atom.value, bool) else None


def _static(atom, producers, depth: int = 8) -> int | None:
    """The int `atom` holds in this trace when it is int arithmetic on literals and block sizes, else None."""
    k = _int_literal(atom)
    eqn = producers.get(atom) if k is None and depth else None
    if eqn is None:
        return k
    if eqn.prim is block_size_p:
        return host_value(eqn.params["block"])
    values = [_static(x, producers, depth - 1) for x in eqn.inputs]
    if None in values or not (eqn.prim is convert_p or eqn.prim in _STATIC_OPS):
        return None
    return values[0] if eqn.prim is convert_p else _STATIC_OPS[eqn.prim](*values)


def _offset(start: Var, stop: Var) -> int | None:
    """k where `stop` is computed as start + k (or start - k), k static (`_static`), else None."""
    producers = _producers()
    eqn = producers.get(stop)
    if eqn is None or eqn.prim not in (_ADD, _SUB) or len(eqn.inputs) != 2:
        return None
    left, right = eqn.inputs
    if eqn.prim is _SUB:
        return -k if _same(left, start, producers) and (k := _static(right, producers)) is not None else None
    for value, other in ((left, right), (right, left)):
        if _same(value, start, producers) and (k := _static(other, producers)) is not None:
            return k
    return None


def static_length(start, stop) -> int | None:
    """stop - start when both are device scalars and it is known while tracing (`_offset`), else None."""
    if not (isinstance(start, DeviceValue) and isinstance(stop, DeviceValue)):
        return None
    return _offset(start.ir_var, stop.ir_var)


def is_device_slice(item: slice) -> bool:
    return any(isinstance(v, (DeviceValue, Tile)) for v in (item.start, item.stop, item.step))


def device_slice_positions(item: slice) -> DeviceValue:
    """The positions a slice with device bounds reads, as an int index tensor (or a ShapeError)."""
    start, stop, step = item.start, item.stop, 1 if item.step is None else item.step
    advice = ADVICE
    if not isinstance(step, int) or isinstance(step, bool) or step <= 0:
        raise ShapeError(f"a slice with device bounds needs a positive int step; {advice}")
    if not isinstance(start, DeviceValue) or start.ndim != 0 or start.dtype.is_floating_point or start.dtype == torch.bool:
        raise ShapeError(f"a slice bound computed on the device must start at an integer device scalar; {advice}")
    length = _offset(start.ir_var, stop.ir_var) if isinstance(stop, DeviceValue) else None
    if length is None:
        raise ShapeError(f"the length of a slice with device bounds must be static; {advice}")
    count = len(range(0, length, step))
    if count == 0:
        raise ShapeError("a slice with device bounds selecting no element inside a tile loop")
    lanes = apply(iota_p, start=0, stop=count, dtype=torch.int32)
    return (lanes if step == 1 else lanes * step) + start
