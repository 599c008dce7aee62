"""Sorting and selection on device values: torch.sort, argsort, topk (values and int64 indices, stable: ties
keep their order, NaN counts as the largest value, as torch sorts), and torch.gather along a dim."""
from __future__ import annotations

import torch

from ...errors import ShapeError, TracingError
from ..primitives import gather_p, permute_p, sort_p, topk_p
from ..proxies import DeviceValue, apply, op
from ..types import TileDim
from .casts import value_of
from .views import axes_of

_KEYED = (torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)


def _operand(x, what: str) -> DeviceValue:
    x = value_of(x)
    if not isinstance(x, DeviceValue):
        raise TracingError(f"torch.{what} inside a tile loop takes a device value; load a tile first "
                           f"(x[tile, :]), got a {type(x).__name__}")
    if x.dtype not in _KEYED:
        raise TracingError(f"torch.{what} of a {x.dtype} value inside a tile loop: sorting packs each value and its "
                           "index into 64 bits, so it takes dtypes of 32 bits or fewer; cast it first (e.g. .float())")
    return x


def _swap_last(x, axis: int):
    """`x` with `axis` and the last axis exchanged (a permutation that is its own inverse)."""
    if axis == x.ndim - 1:
        return x
    perm = list(range(x.ndim))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    return apply(permute_p, x, perm=tuple(perm))


def _along(x, dim, prim, **params):
    """`prim` (which works along the last axis) applied along `dim`."""
    axis = axes_of(x, dim)[0]
    values, indices = apply(prim, _swap_last(x, axis), **params)
    return _swap_last(values, axis), _swap_last(indices, axis)


@op("sort")
def sort(x, dim=-1, descending=False, stable=False):
    x = _operand(x, "sort")
    if x.ndim == 0:
        return torch.return_types.sort((x, torch.zeros_like(x, dtype=torch.int64)))
    return torch.return_types.sort(_along(x, dim, sort_p, descending=bool(descending)))


@op("argsort")
def argsort(x, dim=-1, descending=False, stable=False):
    return sort(x, dim, descending).indices


@op("topk")
def topk(x, k, dim=-1, largest=True, sorted=True):
    x = _operand(x, "topk")
    if isinstance(k, bool) or not isinstance(k, int):
        raise TracingError(f"torch.topk inside a tile loop needs k as a Python int, got {type(k).__name__}")
    axis = axes_of(x, dim)[0] if x.ndim else 0
    extent = x.shape[axis] if x.ndim else 1
    if isinstance(extent, TileDim):
        raise ShapeError("torch.topk along a tile's dimension: an edge tile may hold fewer than k elements; take "
                         "topk along a whole dimension (x[tile, :]) instead")
    if not 0 <= k <= extent:
        raise ShapeError(f"torch.topk: k={k} is out of range for a dimension of size {extent} (as torch refuses it)")
    if x.ndim == 0:
        return torch.return_types.topk((x, torch.zeros_like(x, dtype=torch.int64)))
    return torch.return_types.topk(_along(x, dim, topk_p, k=k, largest=bool(largest)))


@op("gather")
def gather(x, dim, index, *, sparse_grad=False):
    x, index = value_of(x), value_of(index)
    if not isinstance(x, DeviceValue) or not isinstance(index, DeviceValue):
        raise TracingError("torch.gather inside a tile loop takes device values (load tiles first: x[tile, :]); "
                           "to gather from memory, index the tensor: x[rows, idx]")
    if index.dtype.is_floating_point or index.dtype == torch.bool:
        raise TracingError(f"torch.gather: index must be an integer value, got {index.dtype}")
    if index.ndim != x.ndim:
        raise ShapeError(f"torch.gather: index has {index.ndim} dims and the input {x.ndim}; they must match")
    axis = axes_of(x, dim)[0] if x.ndim else 0
    for d, (a, b) in enumerate(zip(x.shape, index.shape)):
        if d != axis and a != b:
            raise ShapeError(f"torch.gather inside a tile loop: dimension {d} of the index ({b}) differs from the "
                             f"input's ({a}); outside `dim` they must be the same (tiles or sizes)")
    return apply(gather_p, x, index, axis=axis)
