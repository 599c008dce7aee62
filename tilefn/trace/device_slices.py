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

_ADD, _SUB, _MUL = P["add"], P["sub"], P["mul"]
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


def _int_literal(atom):
    return atom.value if isinstance(atom, Lit) and isinstance(atom.value, int) and not isinstance(atom.value, bool) else None


def _key(atom, producers, depth: int = 8):
    """A structural name for what `atom` computes: two reads of `t.begin` (or `h * 4` computed twice) are one."""
    if isinstance(atom, Lit):
        return ("lit", atom.value)
    eqn = producers.get(atom)
    if eqn is None or depth == 0 or eqn.prim.effectful:
        return ("var", id(atom))
    params = tuple(sorted((k, repr(v)) for k, v in eqn.params.items()))
    return (eqn.prim.name, params, eqn.outputs.index(atom), tuple(_key(x, producers, depth - 1) for x in eqn.inputs))


def _linear(atom, producers, depth: int = 8):
    """`atom` as an int-linear form: ({term key: coefficient}, constant); block sizes are terms ("block", b)."""
    k = _int_literal(atom)
    if k is not None:
        return {}, k
    eqn = producers.get(atom) if depth else None
    if eqn is not None and eqn.prim is block_size_p:
        return {("block", eqn.params["block"]): 1}, 0
    if eqn is not None and eqn.prim is convert_p and not eqn.params["dtype"].is_floating_point:
        return _linear(eqn.inputs[0], producers, depth - 1)
    if eqn is not None and eqn.prim in (_ADD, _SUB, _MUL) and len(eqn.inputs) == 2:
        (ta, ca), (tb, cb) = (_linear(x, producers, depth - 1) for x in eqn.inputs)
        if eqn.prim is _MUL:
            if ta and tb:
                return {_key(atom, producers): 1}, 0
            (terms, c), scale = ((ta, ca), cb) if not tb else ((tb, cb), ca)
            return {t: v * scale for t, v in terms.items()}, c * scale
        sign = 1 if eqn.prim is _ADD else -1
        terms = dict(ta)
        for t, v in tb.items():
            terms[t] = terms.get(t, 0) + sign * v
        return {t: v for t, v in terms.items() if v}, ca + sign * cb
    return {_key(atom, producers): 1}, 0


def _difference(start, stop):
    """stop - start as ({block: coefficient}, constant) when only block sizes and ints remain, else None."""
    producers = _producers()
    (t_stop, c_stop), (t_start, c_start) = _linear(stop, producers), _linear(start, producers)
    terms = dict(t_stop)
    for t, v in t_start.items():
        terms[t] = terms.get(t, 0) - v
    terms = {t: v for t, v in terms.items() if v}
    if any(t[0] != "block" for t in terms):
        return None
    return {t[1]: v for t, v in terms.items()}, c_stop - c_start


def _offset(start: Var, stop: Var) -> int | None:
    """stop - start when it is ints and block sizes (their values in this trace: `host_value`), else None."""
    diff = _difference(start, stop)
    if diff is None:
        return None
    blocks, const = diff
    return const + sum(v * host_value(b) for b, v in blocks.items())


def static_length(start, stop) -> int | None:
    """stop - start when both are device scalars and it is known while tracing (`_offset`), else None."""
    if not (isinstance(start, DeviceValue) and isinstance(stop, DeviceValue)):
        return None
    return _offset(start.ir_var, stop.ir_var)


def block_span(start, stop, step: int):
    """The open tile whose block size stop - start is, `step` times (`t.begin, t.begin + t.block_size`), or None."""
    if not (isinstance(start, DeviceValue) and isinstance(stop, DeviceValue)):
        return None
    diff = _difference(start.ir_var, stop.ir_var)
    if diff is None or diff[1] != 0 or len(diff[0]) != 1 or next(iter(diff[0].values())) != step:
        return None
    block = next(iter(diff[0]))
    return next((t for t in reversed(st.require().open_tiles) if t.dim.block == block), None)


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
