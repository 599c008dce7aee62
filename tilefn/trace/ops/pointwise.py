"""Pointwise torch functions and operators, registered from data (names and aliases -> primitives)."""
from __future__ import annotations

import torch

from ...errors import TracingError
from .. import state as st
from ..primitives import BINARY, UNARY, P, reshape_p
from ..proxies import DeviceValue, apply, op
from ..types import TileDim, broadcast_shapes
from .casts import value_of


def pointwise(prim, *args):
    return apply(prim, *one_lane_broadcast([value_of(a) for a in args]))


def one_lane_broadcast(values: list) -> list:
    """Where operands' dims do not broadcast, a tile whose block size is fixed at 1 counts as a dim of size 1
    (Helion's: `w[order, c] * x[b, c]` with `order` from `tile(2, n, block_size=1)`): it is reshaped to 1."""
    shapes = [v.shape for v in values if isinstance(v, DeviceValue)]
    if len(shapes) < 2 or broadcast_shapes(*shapes) is not None:
        return values
    rank, blocks = max(len(s) for s in shapes), st.require().blocks
    clashing = {i for i in range(rank) if len({s[i - rank + len(s)] for s in shapes if i - rank + len(s) >= 0} - {1}) > 1}

    def squeezed(v):
        if not isinstance(v, DeviceValue):
            return v
        offset = rank - v.ndim
        shape = tuple(1 if offset + i in clashing and isinstance(d, TileDim) and blocks[d.block].fixed == 1 else d
                      for i, d in enumerate(v.shape))
        return v if shape == v.shape else apply(reshape_p, v, shape=shape)

    return [squeezed(v) for v in values]


_UNARY_ALIASES = {"negative": "neg", "__neg__": "neg", "absolute": "abs", "__abs__": "abs",
                  "special_erf": "erf", "special_erfinv": "erfinv", "__invert__": "bitwise_not"}
_BINARY_ALIASES = {
    "__add__": "add", "__sub__": "sub", "subtract": "sub", "__mul__": "mul", "multiply": "mul",
    "__truediv__": "div", "divide": "div", "true_divide": "div", "floor_divide": "floordiv",
    "__floordiv__": "floordiv", "__mod__": "remainder", "__pow__": "pow", "__eq__": "eq", "__ne__": "ne", "__lt__": "lt", "__le__": "le",
    "__gt__": "gt", "__ge__": "ge", "less": "lt", "less_equal": "le", "greater": "gt",
    "greater_equal": "ge", "not_equal": "ne", "__and__": "bitwise_and", "__or__": "bitwise_or",
    "__xor__": "bitwise_xor", "__lshift__": "lshift", "__rshift__": "rshift",
    "bitwise_left_shift": "lshift", "bitwise_right_shift": "rshift",
}
_REFLECTED = {"__radd__": "add", "__rsub__": "sub", "rsub": "sub", "__rmul__": "mul",
              "__rtruediv__": "div", "__rfloordiv__": "floordiv", "__rmod__": "remainder",
              "__rpow__": "pow", "__rand__": "bitwise_and", "__ror__": "bitwise_or",
              "__rxor__": "bitwise_xor"}
_LOGICAL = {P["bitwise_and"]: P["logical_and"], P["bitwise_or"]: P["logical_or"],
            P["bitwise_xor"]: P["logical_xor"]}  # the bitwise ops on bools


def _unary_handler(prim):
    def handler(x):
        if prim is P["bitwise_not"] and x.dtype == torch.bool:
            return pointwise(P["logical_not"], x)
        return pointwise(prim, x)

    return handler


def _binary_handler(prim, reflected=False):
    def handler(a, b, *, alpha=1, rounding_mode=None):
        if reflected:
            a, b = b, a
        if alpha != 1:
            b = pointwise(P["mul"], b, alpha)
        if prim is P["div"] and rounding_mode == "floor":
            return pointwise(P["floordiv"], a, b)
        if prim is P["div"] and rounding_mode == "trunc":
            return _trunc_div(a, b)
        if prim in _LOGICAL and _is_bool(a) and _is_bool(b):
            return pointwise(_LOGICAL[prim], a, b)
        return pointwise(prim, a, b)

    return handler


def _trunc_div(a, b):
    """`torch.div(a, b, rounding_mode="trunc")`: integers stay integers (exactly), floats truncate."""
    if _is_float(a) or _is_float(b):
        return pointwise(P["trunc"], pointwise(P["div"], a, b))
    q = pointwise(P["floordiv"], a, b)
    inexact = pointwise(P["ne"], pointwise(P["remainder"], a, b), 0)
    signs_differ = pointwise(P["ne"], pointwise(P["lt"], a, 0), pointwise(P["lt"], b, 0))
    return pointwise(P["where"], pointwise(P["logical_and"], inexact, signs_differ), pointwise(P["add"], q, 1), q)


def _is_float(x):
    return isinstance(x, float) or (isinstance(x, DeviceValue) and x.dtype.is_floating_point)


def _is_bool(x):
    return isinstance(x, bool) or getattr(x, "dtype", None) == torch.bool


for _prim in UNARY:
    op(_prim.name)(_unary_handler(_prim))
for _alias, _name in _UNARY_ALIASES.items():
    op(_alias)(_unary_handler(P[_name]))
for _prim in BINARY:
    op(_prim.name)(_binary_handler(_prim))
for _alias, _name in _BINARY_ALIASES.items():
    op(_alias)(_binary_handler(P[_name]))
for _alias, _name in _REFLECTED.items():
    op(_alias)(_binary_handler(P[_name], reflected=True))


@op("where")
def where(cond, a, b):
    return pointwise(P["where"], cond, a, b)


def refuse_bool(name, x):
    if x.dtype == torch.bool:
        raise TracingError(f"torch.{name} is not defined for bool values (as in PyTorch)")


@op("clamp", "clip")
def clamp(x, min=None, max=None):
    if min is not None:
        x = pointwise(P["maximum"], x, min)
    if max is not None:
        x = pointwise(P["minimum"], x, max)
    refuse_bool("clamp", x)
    return x


op("clamp_min")(lambda x, min: clamp(x, min=min))
op("clamp_max")(lambda x, max: clamp(x, max=max))
