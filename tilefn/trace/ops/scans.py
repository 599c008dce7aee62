"""Scans and reductions with a user combine function (`tl.associative_scan`, `tl.reduce`), and the torch scans
built on them: cummax/cummin (values and indices) and logcumsumexp. cumsum/cumprod are primitives of their own
(reductions.py); `reverse=True` scans from the last element to the first."""
from __future__ import annotations

import torch

from ...errors import ShapeError, TracingError
from ..combine import combine_region
from ..primitives import associative_scan_p, combine_reduce_p
from ..proxies import DeviceValue, apply, op
from .casts import to, upcast, value_of
from .views import axes_of, positions


def _leaves(values, what: str) -> tuple[list, bool]:
    """The device values scanned or reduced together (one, or a tuple/list of them of one shape)."""
    packed = isinstance(values, (tuple, list))
    leaves = [value_of(v) for v in (values if packed else [values])]
    if not leaves:
        raise TracingError(f"{what} needs at least one value")
    for leaf in leaves:
        if not isinstance(leaf, DeviceValue):
            raise TracingError(f"{what} takes device values (tiles loaded or computed in the loop), "
                               f"got a {type(leaf).__name__}")
    if any(leaf.shape != leaves[0].shape for leaf in leaves):
        shapes = ", ".join(str(list(leaf.shape)) for leaf in leaves)
        raise ShapeError(f"{what} takes values of one shape (broadcast them first, e.g. .expand_as), got {shapes}")
    return leaves, packed


def _dim(dim, leaf, what: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TracingError(f"{what}: dim must be an int, got {type(dim).__name__}")
    return axes_of(leaf, dim)[0]


def _result(outs, packed: bool):
    outs = outs if isinstance(outs, tuple) else (outs,)
    return tuple(outs) if packed else outs[0]


def associative_scan(combine_fn, values, dim: int, reverse: bool = False):
    """The inclusive scan of `values` (a device value or a tuple of them) along `dim` with `combine_fn`
    (associative; `combine_fn(a, b)` or, for tuples, `combine_fn(left, right)` / `combine_fn(*left, *right)`).
    `reverse=True` scans from the end: each element combines (what follows it, itself)."""
    what = "associative_scan"
    leaves, packed = _leaves(values, what)
    if leaves[0].ndim == 0:
        return _result(tuple(leaves), packed)
    axis = _dim(dim, leaves[0], what)
    region = combine_region(combine_fn, [v.dtype for v in leaves], packed, f"the combine function of {what}")
    return _result(apply(associative_scan_p, *leaves, axis=axis, reverse=bool(reverse), combine=region), packed)


def _other(other, count: int, packed: bool):
    """The padding value per element (None: padded lanes are skipped)."""
    if other is None:
        return None
    others = tuple(other) if isinstance(other, (tuple, list)) else (other,) * count
    if isinstance(other, (tuple, list)) and not packed:
        raise TracingError("reduce: `other` must be a number for a single value")
    if len(others) != count or not all(isinstance(o, (bool, int, float)) for o in others):
        raise TracingError(f"reduce: `other` must be a number or a tuple of {count} numbers")
    return others


def reduce(combine_fn, values, dim=None, other=None, keep_dims: bool = False):
    """`values` (a device value or a tuple of them) reduced along `dim` (None: every dim) with `combine_fn`
    (associative and commutative). Padded lanes are skipped; `other` (a number per value), when given, fills
    them instead and must be the combine's identity (the interpreter sees no padding)."""
    what = "reduce"
    leaves, packed = _leaves(values, what)
    others = _other(other, len(leaves), packed)
    if leaves[0].ndim == 0:
        return _result(tuple(leaves), packed)
    axes = axes_of(leaves[0], dim) if dim is None else [_dim(dim, leaves[0], what)]
    region = combine_region(combine_fn, [v.dtype for v in leaves], packed, f"the combine function of {what}")
    outs = tuple(leaves)
    for axis in reversed(axes):
        outs = apply(combine_reduce_p, *outs, axis=axis, keepdim=bool(keep_dims), combine=region, other=others)
        outs = outs if isinstance(outs, tuple) else (outs,)
    return _result(outs, packed)


def _extreme_combine(better):
    """(value, index) pairs: the later one where it is `better` or tied, NaN beating every number (torch)."""
    def combine(v1, i1, v2, i2):
        take = torch.isnan(v2) | (~torch.isnan(v1) & better(v2, v1))
        return torch.where(take, v2, v1), torch.where(take, i2, i1)

    return combine


def _cum_extreme(result, better):
    def handler(x, dim):
        x = value_of(x)
        if x.ndim == 0:
            return result((x, to(torch.zeros_like(x), torch.int64)))
        axis = axes_of(x, dim)[0]
        values, indices = associative_scan(_extreme_combine(better), (x, positions(x, axis)), axis)
        return result((values, indices))

    return handler


op("cummax")(_cum_extreme(torch.return_types.cummax, lambda a, b: a >= b))
op("cummin")(_cum_extreme(torch.return_types.cummin, lambda a, b: a <= b))


def _log_add_exp(a, b):
    """log(exp(a) + exp(b)), exact at equal infinities (-inf and -inf is -inf, inf and inf is inf)."""
    high, low = torch.maximum(a, b), torch.minimum(a, b)
    return high + torch.log1p(torch.exp(torch.where(a == b, 0.0, low - high)))


@op("logcumsumexp")
def logcumsumexp(x, dim):
    x = value_of(x)
    if not x.dtype.is_floating_point:
        raise TracingError(f"logcumsumexp of an integer value ({x.dtype}): torch refuses it too; cast it to a "
                           "float dtype first")
    if x.ndim == 0:
        return x
    return to(associative_scan(_log_add_exp, upcast(x), axes_of(x, dim)[0]), x.dtype)

