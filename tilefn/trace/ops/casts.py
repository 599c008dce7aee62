"""Casts and identity views: `.to`, `.float()`, `.contiguous()`, `.clone()`."""
from __future__ import annotations

import torch

from ..primitives import convert_p
from ..proxies import DeviceValue, Tile, apply, op


def value_of(x):
    """Tiles used as values mean their indices."""
    return x.index if isinstance(x, Tile) else x


@op("to", "type")
def to(x, *args, dtype=None, **kwargs):
    for arg in args:
        if isinstance(arg, torch.dtype):
            dtype = arg
        elif isinstance(arg, DeviceValue):
            dtype = arg.dtype
    if dtype is None or dtype == x.dtype:
        return x
    return apply(convert_p, value_of(x), dtype=dtype)


def upcast(x):
    """Half-precision math runs in float32, as PyTorch's kernels do internally."""
    return to(x, torch.float32) if x.dtype in (torch.float16, torch.bfloat16) else x


for _name, _dtype in {"float": torch.float32, "half": torch.float16, "bfloat16": torch.bfloat16,
                      "double": torch.float64, "int": torch.int32, "long": torch.int64,
                      "bool": torch.bool}.items():
    op(_name)(lambda x, _dtype=_dtype: to(x, _dtype))


@op("contiguous", "detach")
def identity(x, *args, **kwargs):
    return x


@op("clone")
def clone(x, *, memory_format=None):
    """A new value (not just a new name): loop-carry detection tells values apart by identity."""
    x = value_of(x)
    return apply(convert_p, x, dtype=x.dtype)
