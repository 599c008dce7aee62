"""Matrix products: `tl.dot`, matmul/mm/bmm/`@`, addmm/baddbmm."""
from __future__ import annotations

import torch

from ...errors import DotBatchMismatch, ShapeError
from .. import state as st
from ..primitives import dot_p
from ..proxies import DeviceValue, apply, op
from .casts import to, value_of
from .views import expand


DOT_PRECISIONS = ("ieee", "tf32", "tf32x3")


def dot(a, b, acc=None, out_dtype=None, precision=None):
    """`a @ b (+ acc)` with float32 accumulation; the result has `out_dtype`. `precision` says how
    float32 inputs are multiplied (DOT_PRECISIONS; None: the kernel's `dot_precision`, "ieee" unless set)."""
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
        common = torch.promote_types(a.dtype, b.dtype)
        a, b = to(a, common), to(b, common)
    if out_dtype is None:
        out_dtype = acc.dtype if acc is not None else (torch.int32 if not a.dtype.is_floating_point else torch.float32)
    if acc is None:
        return apply(dot_p, a, b, out_dtype=out_dtype, precision=precision)
    expected = a.shape[:-1] + b.shape[-1:]
    if tuple(acc.shape) != expected:
        acc = expand(acc, expected)
    return apply(dot_p, a, b, acc, out_dtype=out_dtype, precision=precision)


@op("matmul", "mm", "bmm", "__matmul__")
def matmul(a, b):
    out_dtype = torch.promote_types(a.dtype, b.dtype)
    return dot(a, b, out_dtype=out_dtype)


op("__rmatmul__")(lambda a, b: matmul(b, a))


@op("addmm", "baddbmm")
def addmm(acc, a, b, *, beta=1, alpha=1):
    if beta == 1 and alpha == 1 and isinstance(acc, DeviceValue):
        return dot(a, b, acc, out_dtype=acc.dtype)
    product = dot(a, b, out_dtype=torch.float32)
    return to(product * alpha + acc * beta, acc.dtype)
