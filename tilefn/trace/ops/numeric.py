"""Pointwise decompositions with torch's edge rules: lerp, nan_to_num, masked_fill."""
from __future__ import annotations

import torch

from ...errors import ShapeError, TracingError
from ..proxies import DeviceValue, op
from ..scalars import RuntimeScalar
from .casts import to, upcast, value_of


def _float_value(name, role, x, dtype=None):
    if not isinstance(x, DeviceValue):
        raise TracingError(f"torch.{name}: `{role}` must be a tensor inside a tile loop, got {type(x).__name__}")
    if dtype is not None and x.dtype != dtype:
        raise TracingError(f"torch.{name}: expected dtype {dtype} for `{role}` but got dtype {x.dtype} (as torch); "
                           "cast it with .to()")
    if not x.dtype.is_floating_point:
        raise TracingError(f"torch.{name} is not defined for {x.dtype} values (as in PyTorch); cast to a float dtype")
    return x


@op("lerp")
def lerp(start, end, weight):
    """start + weight * (end - start), in torch's two forms (exact at weight 0 and 1), in float32 for halves."""
    start = _float_value("lerp", "input", value_of(start))
    end = _float_value("lerp", "end", value_of(end), start.dtype)
    if isinstance(weight, RuntimeScalar):  # torch computes with it in the op's float type
        weight = weight.device_value(upcast(start).dtype)
    if isinstance(weight, (DeviceValue, torch.Tensor)) or not isinstance(weight, (int, float)):
        weight = upcast(_float_value("lerp", "weight", value_of(weight), start.dtype))
    s, e = upcast(start), upcast(end)
    diff = e - s
    if isinstance(weight, (int, float)):
        out = s + weight * diff if abs(weight) < 0.5 else e - diff * (1 - weight)
    else:
        out = torch.where(torch.abs(weight) < 0.5, s + weight * diff, e - diff * (1 - weight))
    return to(out, start.dtype)


@op("nan_to_num")
def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """NaN -> `nan`, +inf -> `posinf`, -inf -> `neginf` (default: the dtype's largest and lowest finite values)."""
    x = value_of(x)
    if not x.dtype.is_floating_point:
        return x
    info = torch.finfo(x.dtype)
    nan = 0.0 if nan is None else nan
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    out = torch.where(torch.isnan(x), _in_dtype(nan, x.dtype), x)
    out = torch.where(torch.isinf(x) & (x > 0), _in_dtype(posinf, x.dtype), out)
    return torch.where(torch.isinf(x) & (x < 0), _in_dtype(neginf, x.dtype), out)


def _in_dtype(number, dtype):
    """A Python number as the nearest value of `dtype` (what torch writes into a tensor of that dtype)."""
    with torch._C.DisableTorchFunction():
        return torch.tensor(number).to(dtype).item()


@op("masked_fill")
def masked_fill(x, mask, value):
    """`x` with `value` where `mask` is True; `value` is a number or a 0-d value, cast to x's dtype."""
    x, mask = value_of(x), value_of(mask)
    if not isinstance(mask, DeviceValue) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, DeviceValue) else type(mask).__name__
        raise TracingError(f"masked_fill only supports boolean masks, but got mask with dtype {got} (as torch); "
                           "compare to make one (e.g. `m != 0`)")
    if isinstance(value, DeviceValue):
        if value.ndim:
            raise ShapeError(f"masked_fill only supports a 0-dimensional value tensor, but got one with {value.ndim} "
                             "dimension(s) (as torch); use torch.where(mask, value, x)")
        value = to(value, x.dtype)
    elif isinstance(value, (bool, int, float)):
        value = _in_dtype(value, x.dtype)
    elif isinstance(value, RuntimeScalar):
        value = value.device_value(x.dtype)
    else:
        raise TracingError(f"masked_fill takes a number or a 0-d value, got {type(value).__name__}")
    return to(torch.where(mask, value, x), x.dtype)
