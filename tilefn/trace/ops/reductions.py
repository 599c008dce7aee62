"""Reductions and scans: sum, prod, amax/amin, max/min, argmax/argmin, mean, var, std, var_mean, std_mean,
logsumexp, all/any, cumsum/cumprod (scans with user combine functions: scans.py)."""
from __future__ import annotations

import torch

from ...errors import TracingError
from .. import state as st
from ..primitives import (argmax_p, argmin_p, cumprod_p, cumsum_p, reduce_max_p, reduce_min_p, reduce_prod_p,
                          reduce_sum_p, stop_gradient_p, tile_len_p, P)
from ..jagged import masked_for_reduction, refuse_mean
from ..proxies import DeviceValue, Tile, apply, op
from ..types import TileDim
from .casts import to, upcast, value_of
from .pointwise import pointwise
from .views import axes_of, squeeze


def reduce(prim, x, dim=None, keepdim=False):
    """`prim` over each axis `dim` names, innermost first."""
    x = value_of(x)
    for axis in reversed(axes_of(x, dim)):
        x = apply(prim, masked_for_reduction(prim, x, axis), axis=axis, keepdim=keepdim)
    return x


@op("sum")
def sum_(x, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        x = to(x, dtype)
    return reduce(reduce_sum_p, x, dim, keepdim)


@op("prod")
def prod(x, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        x = to(x, dtype)
    return reduce(reduce_prod_p, x, dim, keepdim)


@op("amax")
def amax(x, dim=None, keepdim=False):
    return reduce(reduce_max_p, x, dim, keepdim)


@op("amin")
def amin(x, dim=None, keepdim=False):
    return reduce(reduce_min_p, x, dim, keepdim)


def _minmax(reduce_prim, arg_prim, elementwise, result):
    def handler(x, dim=None, keepdim=False):
        if isinstance(dim, (DeviceValue, Tile)):
            return pointwise(elementwise, x, dim)
        x = value_of(x)
        if dim is None:
            return reduce(reduce_prim, x, None, False)
        values = reduce(reduce_prim, x, dim, keepdim)
        indices = reduce(arg_prim, to(x, torch.uint8) if x.dtype == torch.bool else x, dim, keepdim)
        return result((values, indices))

    return handler


op("max")(_minmax(reduce_max_p, argmax_p, P["maximum"], torch.return_types.max))
op("min")(_minmax(reduce_min_p, argmin_p, P["minimum"], torch.return_types.min))


@op("argmax")
def argmax(x, dim=None, keepdim=False):
    if dim is None:
        raise TracingError("argmax needs `dim` inside a tile loop")
    return reduce(argmax_p, x, dim, keepdim)


@op("argmin")
def argmin(x, dim=None, keepdim=False):
    if dim is None:
        raise TracingError("argmin needs `dim` inside a tile loop")
    return reduce(argmin_p, x, dim, keepdim)


def _count(x, axes):
    """How many valid elements the reduction over `axes` sees (a tile's edge may hold fewer)."""
    refuse_mean(x, axes)
    count = 1
    for axis in axes:
        dim = x.shape[axis]
        if isinstance(dim, TileDim):
            tile_len = apply(tile_len_p, st.require().tile_vars[dim.tile])
            count = tile_len if count == 1 else count * tile_len
        else:
            count = count * dim
    return count


@op("mean")
def mean(x, dim=None, keepdim=False, *, dtype=None):
    x = value_of(x)
    if dtype is not None:
        x = to(x, dtype)
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        raise TracingError(f"mean of an integer value ({x.dtype}); cast it to a float dtype first")
    xf = upcast(x)
    total = reduce(reduce_sum_p, xf, dim, keepdim)
    return to(total / _count(x, axes_of(x, dim)), x.dtype)


def _variance(x, dim, unbiased, keepdim, correction):
    """(variance, mean kept as a broadcastable value), in float32 for halves; torch's argument forms:
    var(x, dim, *, correction, keepdim), var(x, dim, unbiased, keepdim), var(x, unbiased)."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased is None else int(unbiased)
    x = value_of(x)
    if not x.dtype.is_floating_point:
        raise TracingError(f"std and var only support floating point dtypes, got {x.dtype} (as torch); "
                           "cast it first (e.g. .float())")
    xf = upcast(x)
    mu = mean(xf, dim, keepdim=True)
    centered = xf - mu
    total = reduce(reduce_sum_p, centered * centered, dim, keepdim)
    count = _count(xf, axes_of(xf, dim))
    dof = max(count - correction, 0) if isinstance(count, int) else torch.clamp_min(count - correction, 0)
    return total / dof, mu


@op("var")
def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    variance, _ = _variance(x, dim, unbiased, keepdim, correction)
    return to(variance, x.dtype)


@op("std")
def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    variance, _ = _variance(x, dim, unbiased, keepdim, correction)
    return to(torch.sqrt(variance), x.dtype)


def _with_mean(x, dim, unbiased, keepdim, correction, finish):
    """(finish(variance), mean) in x's dtype: torch.var_mean / std_mean."""
    variance, mu = _variance(x, dim, unbiased, keepdim, correction)
    if not keepdim:
        for axis in reversed(axes_of(mu, None if isinstance(dim, bool) else dim)):
            mu = squeeze(mu, axis)
    return to(finish(variance), x.dtype), to(mu, x.dtype)


@op("var_mean", method=False)
def var_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _with_mean(x, dim, unbiased, keepdim, correction, lambda v: v)


@op("std_mean", method=False)
def std_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return _with_mean(x, dim, unbiased, keepdim, correction, torch.sqrt)


def shift_of(row_max):
    """A row's max used only as the shift of softmax / logsumexp (whose results do not depend on it): read
    through `stop_gradient`, so a derived backward does not differentiate the max (exact, and no tie split)."""
    return apply(stop_gradient_p, row_max)


@op("logsumexp")
def logsumexp(x, dim, keepdim=False):
    x = value_of(x)
    if not x.dtype.is_floating_point:  # as PyTorch: integers give the default float dtype
        x = to(x, torch.get_default_dtype())
    xf = upcast(x)
    m = amax(xf, dim, keepdim=True)
    m = shift_of(torch.where(torch.isinf(m), 0.0, m))
    out = torch.log(sum_(torch.exp(xf - m), dim, keepdim=True)) + m
    if not keepdim:
        for axis in reversed(axes_of(xf, dim)):
            out = squeeze(out, axis)
    return to(out, x.dtype)


@op("all")
def all_(x, dim=None, keepdim=False):
    return reduce(reduce_min_p, to(x, torch.bool), dim, keepdim)


@op("any")
def any_(x, dim=None, keepdim=False):
    return reduce(reduce_max_p, to(x, torch.bool), dim, keepdim)


def cumulative(prim, x, dim, dtype=None, reverse: bool = False):
    """cumsum/cumprod along `dim`; `reverse=True` from the last element to the first (Helion's hl.cumsum)."""
    if dtype is not None:
        x = to(x, dtype)
    x = value_of(x)
    return apply(prim, x, axis=axes_of(x, dim)[0], reverse=bool(reverse))


@op("cumsum")
def cumsum(x, dim, *, dtype=None):
    return cumulative(cumsum_p, x, dim, dtype)


@op("cumprod")
def cumprod(x, dim, *, dtype=None):
    return cumulative(cumprod_p, x, dim, dtype)
