"""Atomics: `tl.atomic_*` on a store's pointers and masks, or a tensor descriptor's reduction (TMA).

`Config.atomic_indexing` picks per atomic site (`tilefn.lower.sites`), as Helion's knob does:
"pointer" or "tensor_descriptor". A descriptor serves an add/and/or/xor/max/min whose old values
nobody reads, with relaxed ordering, a dense box TMA can take and a dtype Triton's descriptor
reductions take; anything else (and every atomic under Triton's CPU interpreter, which has no
descriptor reductions) uses pointers: the knob changes speed, never results. A masked atomic (lanes
whose index tensors lie outside the target) takes pointers, its mask as `mask=`.
"""
from __future__ import annotations

import torch

from ..errors import TilefnError
from ..trace.primitives import P, atomic_cas_p, atomic_operands
from . import memory
from .emit import Emitter, tl_dtype

_BITS = {torch.float32: torch.int32, torch.float64: torch.int64}  # xchg moves bits (the interpreter's has no floats)

DESCRIPTOR_DTYPES = {  # atomic -> the target dtypes Triton's descriptor reductions take
    "atomic_add": (torch.int32, torch.float32, torch.float16, torch.bfloat16),
    "atomic_max": (torch.int32, torch.int64, torch.float16, torch.bfloat16),
    "atomic_min": (torch.int32, torch.int64, torch.float16, torch.bfloat16),
    "atomic_and": (torch.int32, torch.int64), "atomic_or": (torch.int32, torch.int64),
    "atomic_xor": (torch.int32, torch.int64),
}


def _descriptor_box(em: Emitter, eqn):
    """The box a descriptor reduction writes, or None when this atomic takes pointers."""
    target, value = eqn.inputs[0], atomic_operands(eqn)[1][-1]
    if (em.interpret or eqn.params["masked"] or em.knob("atomic_indexing", eqn) != "tensor_descriptor"
            or target.type.dtype not in DESCRIPTOR_DTYPES.get(eqn.prim.name, ())
            or eqn.params["sem"] != "relaxed" or eqn.outputs[0] in em.read_vars
            or tuple(value.type.shape) != tuple(eqn.params["shape"])):
        return None
    dims = memory.box(em, eqn)
    return dims if dims is not None and memory.descriptor_ok(target, dims) else None


def _lifted(expr: str, index_shape, shape) -> str:
    """`expr` of the index's rank given the value's rank (new leading axes: Triton broadcasts equal ranks only)."""
    lead = len(shape) - len(index_shape)
    if lead <= 0 or not index_shape:
        return expr
    return f"({expr})[{', '.join(['None'] * lead + [':'] * len(index_shape))}]"


def lower_atomic(em: Emitter, eqn) -> None:
    """One atomic: its old values assigned to its output (a descriptor reduction returns none)."""
    _, values, _ = atomic_operands(eqn)
    target, value = eqn.inputs[0], values[-1]
    shape = value.type.shape
    dims = _descriptor_box(em, eqn)
    if dims is not None:
        lanes = memory.reshaped(em(value), [em.dim_expr(d) for d in shape], [d.lanes for d in dims])
        offsets = ", ".join(d.offset for d in dims)
        em.emit(f"{memory.descriptor(em, target, dims)}.{eqn.prim.name}([{offsets}], {lanes})")
        return
    index_shape = tuple(eqn.params["shape"])
    pointer, index_mask = memory.address(em, eqn, index_shape)  # (its bounds, and its mask when masked)
    mask = em.value_mask(shape)
    if index_shape != tuple(shape):  # one element per lane of the index, updated by several lanes of the value
        pointer = f"tl.broadcast_to({_lifted(pointer, index_shape, shape)}, {em.shape_expr(shape)})"
        index_mask = _lifted(index_mask, index_shape, shape) if index_mask else None
        mask = " & ".join(f"({m})" for m in (mask, index_mask) if m) or None
    else:
        mask = index_mask
    if mask and em.interpret:  # Triton's CPU interpreter drops lanes of a mask it must broadcast: a whole one
        mask = f"({mask}) & tl.full({em.shape_expr(shape)}, 1, tl.int1)"
    order = f"sem={eqn.params['sem']!r}, scope={eqn.params['scope']!r}"
    if eqn.prim is atomic_cas_p:
        expected = em(values[0])
        if mask:  # tl.atomic_cas takes no mask: a masked-off lane swaps the first element with itself
            pointer = f"tl.where({mask}, {pointer}, {em(target)})"
            expected = f"tl.where({mask}, {expected}, {em(value)})"
        em.assign(eqn.outputs[0], f"tl.atomic_cas({pointer}, {expected}, {em(value)}, {order})")
        return
    masked = f", mask={mask}" if mask else ""
    dtype, operand = target.type.dtype, em(value)
    if em.interpret and eqn.prim is P["atomic_add"] and dtype == torch.bfloat16:
        raise TilefnError("Triton's CPU interpreter has no bfloat16 atomic_add (GPUs have one): accumulate into "
                          "a float32 tensor to run on the CPU", source=eqn.source)
    if eqn.prim is P["atomic_xchg"] and dtype in _BITS:
        bits = tl_dtype(_BITS[dtype])
        old = (f"tl.atomic_xchg(({pointer}).to(tl.pointer_type({bits})), ({operand}).to({bits}, bitcast=True)"
               f"{masked}, {order})")
        em.assign(eqn.outputs[0], f"{old}.to({tl_dtype(dtype)}, bitcast=True)")
        return
    em.assign(eqn.outputs[0], f"tl.{eqn.prim.name}({pointer}, {operand}{masked}, {order})")
