"""Slices whose bounds are device values: `dt_bias[h : h + 1]`, `x[t.begin : t.begin + k]`.

A result's shape is static, so the stop must be the start plus an int. That is read off the
equations that computed them: the stop is `start + k`, `k + start` or `start - k`, where the start may
be computed again in the same way (`t.begin` read twice, `h * 4 : h * 4 + 4`). The slice reads the
positions start, start + step, ... as an index tensor, trusted as one (no bounds mask, as `x[idx]`).
"""
from __future__ import annotations

import torch

from ..errors import ShapeError
from . import state as st
from .ir import Lit, Var
from .primitives import P, iota_p
from .proxies import DeviceValue, Tile, apply

_ADD, _SUB = P["add"], P["sub"]


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


def _offset(start: Var, stop: Var) -> int | None:
    """k where `stop` is computed as start + k (or start - k), else None."""
    producers = _producers()
    eqn = producers.get(stop)
    if eqn is None or eqn.prim not in (_ADD, _SUB) or len(eqn.inputs) != 2:
        return None
    left, right = eqn.inputs
    if eqn.prim is _SUB:
        k = _int_literal(right)
        return -k if k is not None and _same(left, start, producers) else None
    for value, other in ((left, right), (right, left)):
        k = _int_literal(other)
        if k is not None and _same(value, start, producers):
            return k
    return None


def is_device_slice(item: slice) -> bool:
    return any(isinstance(v, (DeviceValue, Tile)) for v in (item.start, item.stop, item.step))


def device_slice_positions(item: slice) -> DeviceValue:
    """The positions a slice with device bounds reads, as an int index tensor (or a ShapeError)."""
    start, stop, step = item.start, item.stop, 1 if item.step is None else item.step
    advice = ("write the slice as x[s : s + k] with an int k (a static length), or index with "
              "s + tl.arange(k) / t.index")
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
