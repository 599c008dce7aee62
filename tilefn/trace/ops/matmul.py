"""Matrix products: `tl.dot`, matmul/mm/bmm/`@`, addmm/baddbmm (with torch's `out_dtype`)."""
from __future__ import annotations

import torch

from ...errors import DotBatchMismatch, DotDtypeError, ShapeError, TracingError
from .. import state as st
from ..primitives import dot_p
from ..proxies import DeviceValue, apply, op
from .casts import to, value_of
from .views import expand


DOT_PRECISIONS = ("ieee", "tf32", "tf32x3")
_HALF = (torch.float16, torch.bfloat16)


def _common_dtype(a, b) -> torch.dtype:
    """The dtype both operands are multiplied in (torch's promotion; float8 kinds do not mix)."""
    try:
        return torch.promote_types(a.dtype, b.dtype)
    except RuntimeError:
        raise DotDtypeError(f"matrix product of {a.dtype} and {b.dtype}: torch does not promote float8 dtypes; "
                           "cast both operands to one dtype with .to(...)") from None


def dot(a, b, acc=None, out_dtype=None, precision=None):
    """`a @ b (+ acc)` accumulated in float32 (float64 for float64 operands, int32 for integers); the
    result has `out_dtype`. `precision` says how float32 inputs are multiplied (DOT_PRECISIONS; None:
    the kernel's `dot_precision`, "ieee" unless set)."""
    precision = precision if precision is not None else st.require().dot_precision
    if precision not in DOT_PRECISIONS:
        raise ValueError(f"dot precision must be one of {list(DOT_PRECISIONS)}, got {precision!r}")
    a, b = value_of(a), value_of(b)
    if a.ndim not in (2, 3) or a.ndim != b.ndim:
        raise ShapeError(f"matrix product of {a.ndim}-d and {b.ndim}-d values; both must be 2-d or 3-d")
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"matrix product of shapes {list(map(str, a.shape))} and {list(map(str, b.shape))}: "
                         "inner dimensions differ")
    if a.ndim == 3 and a.shape[0] != b.shape[0]:
        raise DotBatchMismatch(f"batched matrix product of shapes {list(map(str, a.shape))} and "
                               f"{list(map(str, b.shape))}: the batch dimensions {a.shape[0]} and {b.shape[0]} "
                               "differ; index both operands with the same tile (or size) on dimension 0")
    if a.dtype != b.dtype:
        common = _common_dtype(a, b)
        a, b = to(a, common), to(b, common)
    if a.dtype == torch.bool:
        raise DotDtypeError("matrix product of bool values; cast them to an integer or float dtype first")
    if out_dtype is None:
        out_dtype = acc.dtype if acc is not None else (torch.int32 if not a.dtype.is_floating_point else torch.float32)
    if not a.dtype.is_floating_point and any(d.is_floating_point for d in (out_dtype, *([acc.dtype] if acc is not None else []))):
        raise DotDtypeError(f"matrix product of {a.dtype} values accumulates in int32: give an int32 acc/out_dtype "
                           f"(got {out_dtype}), or cast the operands to a float dtype first")
    if acc is None:
        return apply(dot_p, a, b, out_dtype=out_dtype, precision=precision)
    expected = a.shape[:-1] + b.shape[-1:]
    if tuple(acc.shape) != expected:
        acc = expand(acc, expected)
    return apply(dot_p, a, b, acc, out_dtype=out_dtype, precision=precision)


def _torch_out_dtype(name, a, b, out_dtype) -> torch.dtype:
    """torch's rule for `torch.mm(a, b, out_dtype)`: the input dtype, or float32 for half inputs."""
    dtype = _common_dtype(a, b)
    if out_dtype is None or out_dtype == dtype:
        return dtype
    if not isinstance(out_dtype, torch.dtype):
        raise DotDtypeError(f"torch.{name}: out_dtype must be a torch.dtype, got {out_dtype!r}")
    if out_dtype == torch.float32 and dtype in _HALF:
        return out_dtype
    raise DotDtypeError(f"torch.{name}: out_dtype must be the input dtype ({dtype}) or float32 for float16/bfloat16 "
                       f"inputs, got {out_dtype} (as torch refuses it); hl.dot(a, b, out_dtype=...) takes others")


@op("mm", "bmm")
def mm(a, b, out_dtype=None, *, out=None):
    if out is not None:
        raise TracingError("torch.mm/bmm(..., out=) is not supported inside a tile loop; assign the result")
    return dot(a, b, out_dtype=_torch_out_dtype("mm", a, b, out_dtype))


@op("matmul", "__matmul__")
def matmul(a, b):
    return dot(a, b, out_dtype=_common_dtype(a, b))


op("__rmatmul__")(lambda a, b: matmul(b, a))


@op("addmm", "baddbmm")
def addmm(acc, a, b, out_dtype=None, *, beta=1, alpha=1):
    """`beta * acc + alpha * (a @ b)`; with an `out_dtype` (float32 for half inputs) the sum is not rounded
    to the inputs' dtype."""
    a, b = value_of(a), value_of(b)
    out_dtype = _torch_out_dtype("addmm", a, b, out_dtype) if out_dtype is not None else acc.dtype
    floating = _common_dtype(a, b).is_floating_point
    if beta == 1 and alpha == 1 and isinstance(acc, DeviceValue) and (floating or not out_dtype.is_floating_point):
        return dot(a, b, acc, out_dtype=out_dtype)
    wide = torch.float64 if out_dtype == torch.float64 else torch.float32 if floating else torch.int32
    product = dot(a, b, out_dtype=wide)
    return to(product * alpha + acc * beta, out_dtype)
