"""Atomic read-modify-writes of host tensors inside a tile loop (`tl.atomic_add(out, [idx], v)` ...).

The target is indexed as a store is (`indexing.index_spec`); the value is cast to the target's dtype
and broadcast to the index's shape, or the index broadcast to the value's (`atomic_add(out, [0], x[t])`
adds every lane into one element). Lanes whose index tensors lie outside the target are masked off, as a
store's are (they update nothing), and so are a jagged tile's lanes past each row's end. Each atomic returns the old values, in the value's shape.
"""
from __future__ import annotations

import torch

from ..errors import ShapeError, TracingError
from .indexing import spec_and_bounds, tensor_var, with_lane_mask
from .jagged import lane_mask
from .ops.creation import full_like_shape
from .primitives import ATOMICS, atomic_cas_p, broadcast_to_p, convert_p
from .proxies import DeviceValue, HostTensor, apply
from .scalars import RuntimeScalar
from .types import broadcast_shapes

SEMS = ("relaxed", "acquire", "release", "acq_rel")
SCOPES = ("gpu", "cta", "sys")
BY_NAME = {prim.name: prim for prim in (*ATOMICS, atomic_cas_p)}
_WIDE = (torch.int32, torch.int64, torch.float32, torch.float64)
DTYPES = {  # atomic name -> the target dtypes Triton's atomics take
    "atomic_add": _WIDE + (torch.float16, torch.bfloat16),
    "atomic_and": (torch.int32, torch.int64), "atomic_or": (torch.int32, torch.int64),
    "atomic_xor": (torch.int32, torch.int64),
    "atomic_max": _WIDE, "atomic_min": _WIDE, "atomic_xchg": _WIDE,
    "atomic_cas": _WIDE + (torch.float16, torch.bfloat16),
}


def check_sem(name: str, sem, scope) -> None:
    """Refuse a memory ordering or scope Triton does not know."""
    if sem not in SEMS:
        raise TracingError(f"{name}(sem={sem!r}): the memory semantic is one of {', '.join(map(repr, SEMS))}")
    if scope not in SCOPES:
        raise TracingError(f"{name}(scope={scope!r}): the scope is one of {', '.join(map(repr, SCOPES))}")


def _target(name: str, tensor):
    if isinstance(tensor, DeviceValue):
        raise TracingError(f"{name}() updates a tensor in memory (a kernel argument or a tensor made on the "
                           "host), not a device value: for a value inside the loop use torch ops "
                           "(e.g. acc = acc + v)")
    if not isinstance(tensor, (HostTensor, torch.Tensor)):
        raise TracingError(f"{name}() takes a tensor as its target, got {type(tensor).__name__}")
    var = tensor_var(tensor)
    dtype = var.type.dtype
    if dtype not in DTYPES[name]:
        allowed = ", ".join(str(d).replace("torch.", "") for d in DTYPES[name])
        raise TracingError(f"{name}() on a {str(dtype).replace('torch.', '')} tensor: Triton's {name} takes "
                           f"{allowed} targets; accumulate into a tensor of one of those dtypes")
    return var


def _operand(value, shape, dtype):
    """`value` as a device value of the target's dtype, broadcast to `shape`."""
    if isinstance(value, (bool, int, float, RuntimeScalar)):
        return full_like_shape(shape, value, dtype)
    if not isinstance(value, DeviceValue):
        raise TracingError(f"an atomic's value is a device value or a number, got {type(value).__name__}")
    if value.dtype != dtype:
        value = apply(convert_p, value, dtype=dtype)
    if value.shape != tuple(shape):
        value = apply(broadcast_to_p, value, shape=tuple(shape))
    return value


def _shape_text(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def atomic(name: str, tensor, index, *values, sem="relaxed", scope="gpu"):
    """Bind the atomic `name` on `tensor[index]` with `values` (cas: expected, value); the old values."""
    check_sem(name, sem, scope)
    var = _target(name, tensor)
    entries, inputs, shape, inside = spec_and_bounds(var.type, tuple(index))
    out_shape = shape
    for value in values:
        value_shape = value.shape if isinstance(value, DeviceValue) else ()
        both = broadcast_shapes(value_shape, out_shape)
        if both is None:
            raise ShapeError(f"{name}(): a value of shape {_shape_text(value_shape)} does not broadcast with "
                             f"the indexed shape {_shape_text(out_shape)}")
        out_shape = both
    if out_shape != tuple(shape) and lane_mask(out_shape) is not None:
        raise TracingError(f"{name}() with a value broadcast past its index over a jagged tile's dim: the lanes "
                           "past each row's end are masked on the index's dims; index the target with every dim "
                           "of the value")
    operands = [_operand(v, out_shape, var.type.dtype) for v in values]
    mask = with_lane_mask(shape, inside)  # (in the index's shape, as a store's)
    mask = [] if mask is None else [mask]
    return apply(BY_NAME[name], var, *inputs, *operands, *mask, shape=shape, index=entries, masked=bool(mask),
                 sem=sem, scope=scope)
