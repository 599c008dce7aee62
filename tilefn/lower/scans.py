"""Lowering of scans and reductions with a user combine function, and of cumsum/cumprod.

The combine Region becomes a `@triton.jit` function beside the kernel (its scalar equations lowered by the
ordinary rules into a helper emitter); `tl.associative_scan` / `tl.reduce` call it on a tuple of values.
Padded lanes: a forward scan leaves them at the end, where they change no valid lane; a reverse scan and a
reduction over a masked axis carry a validity flag (an invalid element acts as the identity: the combine
keeps the other side) unless a reduction's `other` says what to pad with.
"""
from __future__ import annotations

import torch

from ..trace.ir import Lit
from ..trace.primitives import cumprod_p
from . import interpreted
from .emit import Emitter, tl_dtype

_HALF = (torch.float16, torch.bfloat16)


def combine_function(em: Emitter, region, lower_eqn, flagged: bool) -> str:
    """Emit the combine Region as a jit function (with a validity flag per side when `flagged`); its name."""
    helper = em.helper_emitter()
    n = len(region.params) // 2
    names = [helper.fresh(f"{side}{i}") for side in ("left", "right") for i in range(n)]
    for var, name in zip(region.params, names):
        helper.bind(var, name)
    for eqn in region.eqns:
        lower_eqn(helper, eqn)
    results, params = [helper(r) for r in region.results], list(names)
    if flagged:
        valid = [helper.fresh("left_valid"), helper.fresh("right_valid")]
        params = names[:n] + valid[:1] + names[n:] + valid[1:]
        both = helper.fresh("both_valid")
        helper.emit(f"{both} = {valid[0]} & {valid[1]}")
        results = [f"tl.where({both}, {r}, tl.where({valid[0]}, {a}, {b}))"
                   for r, a, b in zip(results, names[:n], names[n:])] + [f"{valid[0]} | {valid[1]}"]
    name = em.fresh("_combine")
    em.needs_helpers |= helper.needs_helpers
    body = "".join(line + "\n" for line in helper.lines)
    em.generated_helpers[name] = f"@triton.jit\ndef {name}({', '.join(params)}):\n{body}    return {', '.join(results)},\n"
    return name


def _lane_mask(em: Emitter, shape, axis: int) -> str | None:
    """The valid lanes of `axis`, broadcast to `shape` (None when every lane is valid)."""
    mask = em.dim_mask(shape[axis])
    if mask is None:
        return None
    return f"tl.broadcast_to({em.expand(mask, axis, len(shape))}, {em.shape_expr(shape)})"


def _constant(em: Emitter, value, dtype: torch.dtype) -> str:
    """A scalar of `dtype` (halves made in float32 and converted: Triton's CPU interpreter has no half constants)."""
    if dtype in _HALF:
        return em.converted(f"tl.full([], {em(Lit(value, None))}, tl.float32)", torch.float32, dtype)
    return f"tl.full([], {em(Lit(value, None))}, {tl_dtype(dtype)})"


def _call(em: Emitter, eqn, call: str, operands: list, flagged: bool) -> None:
    outs = [em(o) for o in eqn.outputs] + ([em.fresh("valid")] if flagged else [])
    em.emit(f"{', '.join(outs)}, = {call.format(values='(' + ', '.join(operands) + ',)')}")


def _bind(em: Emitter, eqn, exprs: list) -> None:
    for out, expr in zip(eqn.outputs, exprs):
        em.assign(out, expr)


def lower_associative_scan(em: Emitter, eqn, lower_eqn) -> None:
    axis, reverse = eqn.params["axis"], eqn.params["reverse"]
    shape = eqn.inputs[0].type.shape
    mask = _lane_mask(em, shape, axis) if reverse else None
    fn = combine_function(em, eqn.params["combine"], lower_eqn, flagged=mask is not None)
    operands = [em(x) for x in eqn.inputs] + ([mask] if mask is not None else [])
    if em.interpret:
        _bind(em, eqn, interpreted.scan(em, operands, shape, axis, fn, reverse))
        return
    _call(em, eqn, f"tl.associative_scan({{values}}, {axis}, {fn}, reverse={reverse})", operands, mask is not None)


def lower_combine_reduce(em: Emitter, eqn, lower_eqn) -> None:
    axis, keepdim, other = eqn.params["axis"], eqn.params["keepdim"], eqn.params["other"]
    shape = eqn.inputs[0].type.shape
    mask = _lane_mask(em, shape, axis)
    operands = [em(x) for x in eqn.inputs]
    flagged = mask is not None and other is None
    if mask is not None and other is not None:
        operands = [f"tl.where({mask}, {x}, {_constant(em, o, v.type.dtype)})"
                    for x, o, v in zip(operands, other, eqn.inputs)]
    fn = combine_function(em, eqn.params["combine"], lower_eqn, flagged)
    operands += [mask] if flagged else []
    if em.interpret:
        _bind(em, eqn, interpreted.reduce(em, operands, shape, axis, fn, eqn.outputs[0].type.shape))
        return
    _call(em, eqn, f"tl.reduce({{values}}, {axis}, {fn}, keep_dims={keepdim})", operands, flagged)


def lower_cumulative(em: Emitter, eqn) -> None:
    """tl.cumsum / tl.cumprod (float32 for halves); reversed over a masked axis, padding holds the identity."""
    (x,) = eqn.inputs
    axis, reverse = eqn.params["axis"], eqn.params["reverse"]
    dtype = eqn.outputs[0].type.dtype
    compute = torch.float32 if dtype in _HALF else dtype
    value = em.converted(em(x), x.type.dtype, compute)
    mask = _lane_mask(em, x.type.shape, axis) if reverse else None
    if mask is not None:
        value = f"tl.where({mask}, {value}, {_constant(em, 1 if eqn.prim is cumprod_p else 0, compute)})"
    expr = f"tl.{eqn.prim}({value}, axis={axis}{', reverse=True' if reverse else ''})"
    em.assign(eqn.outputs[0], em.converted(expr, compute, dtype))
