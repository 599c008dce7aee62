"""Random numbers in tile loops: `tl.rand/randn/randint(shape, seed)` and torch's `rand_like`,
`randn_like`, `randint_like`, `rand`, `randn` and `dropout`.

Each element is one Philox draw from a seed and its *offset*: its row-major index in the full
extents of its dimensions (a tile dimension spans its loop's whole range, whatever the block
size), so no Config changes a value. The torch spellings take no seed: each call site draws one
from torch's default generator when the kernel is called (a host equation before the launch), so
successive calls differ and `torch.manual_seed` makes them repeat; their offsets also count the
iterations of enclosing loops the value's shape leaves out (a `tl.grid` row, an inner loop), so
no two iterations repeat each other's numbers.
"""
from __future__ import annotations

import math

import torch

from ...errors import ShapeError, TracingError, UnsupportedOp
from .. import state as st
from ..primitives import expand_dims_p, rand_p, randint_p, randn_p, rng_seed_p
from .. import scalars
from ..proxies import HOOKS, DeviceValue, HostTensor, Tile, apply, bind, check_in_scope, op
from ..scalars import RuntimeScalar
from ..types import HostType, TileDim
from .casts import to, value_of
from .creation import _shape_args, arange, full_like_shape, shape_entries
from .pointwise import clamp
from .views import expand

INT64_RANGE = (-2**63, 2**63 - 1)
INT32_BOUNDS = (-2**31, 2**31)  # randint's low and high (exclusive) bounds


def _is_integer(dtype: torch.dtype) -> bool:
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


def seed_value(seed):
    """`seed` as an int or an int64 device scalar (a one-element host tensor is read in the kernel)."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        if not INT64_RANGE[0] <= seed <= INT64_RANGE[1]:
            raise TracingError(f"the random seed {seed} does not fit in 64 bits")
        return seed
    if isinstance(seed, DeviceValue) and seed.ndim == 0 and _is_integer(seed.dtype):
        check_in_scope(seed)
        return seed
    if isinstance(seed, HostTensor) and seed.numel() == 1 and _is_integer(seed.dtype):
        (var,) = bind(rng_seed_p, (seed,))
        return DeviceValue(var, st.require().region)
    what = repr(seed) if isinstance(seed, (bool, float, str)) else type(seed).__name__
    raise TracingError(f"the seed of a random-number call must be an int, an integer device scalar or a "
                       f"one-element integer tensor, got {what}")


def _kernel_device(state) -> torch.device:
    """The device of the kernel's tensors (arguments and host allocations)."""
    candidates = [*state.hints, *(v for eqn in state.host_eqns for v in eqn.outputs)]
    for var in candidates:
        if isinstance(var.type, HostType):
            return torch.device(var.type.device)
    raise TracingError("torch's random functions inside a kernel draw their seed on the kernel's device, "
                       "but this kernel has no tensor yet; allocate its outputs before the tile loop")


def drawn_seed() -> DeviceValue:
    """A seed drawn from torch's default generator at every call of the kernel, read in the kernel."""
    device = _kernel_device(st.require())
    seed = HOOKS["record_host"](torch.randint, (INT64_RANGE[0], INT64_RANGE[1], (1,)),
                                {"dtype": torch.int64, "device": device}, prologue=True)
    return seed_value(seed)


def _static_end(tile: Tile) -> int:
    if tile.static_end is None:
        raise TracingError("random numbers over a tile loop with a runtime bound: offsets need static "
                           "extents; pass offsets= explicitly (e.g. made from tile.index)")
    return tile.static_end


def _loop_coordinates(shape) -> list:
    """(index, None, extent) of each enclosing loop dimension `shape` leaves out, outermost first:
    a grid loop's index, an inner tile loop's first index."""
    coords, region = [], st.require().region
    while region is not None and region.parent is not None:
        if region.loop is None:  # a branch of an `if` on a device value: no loop dims of its own
            region = region.parent
            continue
        loop, level = region.loop, []
        for i, ((kind, dim), handle) in enumerate(zip(loop.loop_dims, loop.handles)):
            if kind == "tile" and dim in shape:
                continue
            end = loop.bounds[2 * i + 1]
            if not isinstance(end, int):
                raise TracingError("torch's random functions inside a loop with a runtime bound that the "
                                   "value's shape leaves out: use tl.rand(shape, seed, offsets=...) instead")
            level.append((handle if kind == "grid" else handle.begin, None, end))
        coords[:0] = level
        region = region.parent
    return coords


def _on_axis(vector, axis: int, rank: int):
    for _ in range(axis):
        vector = apply(expand_dims_p, vector, axis=0)
    for _ in range(rank - axis - 1):
        vector = apply(expand_dims_p, vector, axis=vector.ndim)
    return vector


def offsets_for(shape, enclosing: bool = False):
    """Each element's row-major index in the full extents of `shape` (ints and TileDims): int32, or
    int64 when they don't fit. With `enclosing`, the enclosing loops `shape` leaves out lead."""
    coords = _loop_coordinates(shape) if enclosing else []
    for axis, dim in enumerate(shape):
        if isinstance(dim, TileDim):
            tile = st.require().tiles[dim.tile]
            coords.append((tile.index, axis, _static_end(tile)))
        else:
            coords.append((arange(0, dim), axis, dim))
    dtype = torch.int32 if math.prod(extent for *_, extent in coords) <= 2**31 else torch.int64
    offsets, stride = None, 1
    for index, axis, extent in reversed(coords):
        term = to(index, dtype) * stride if stride != 1 else to(index, dtype)
        term = term if axis is None else _on_axis(term, axis, len(shape))
        offsets = term if offsets is None else offsets + term
        stride *= extent
    return full_like_shape((), 0, dtype) if offsets is None else expand(offsets, shape)


def _explicit_offsets(offsets):
    offsets = value_of(offsets)
    if isinstance(offsets, int) and not isinstance(offsets, bool):
        return full_like_shape((), offsets, torch.int64)
    if not isinstance(offsets, DeviceValue) or not _is_integer(offsets.dtype):
        raise TracingError(f"offsets= must be an integer device value (e.g. from tile.index), got "
                           f"{offsets.dtype if isinstance(offsets, DeviceValue) else type(offsets).__name__}")
    return offsets if offsets.dtype in (torch.int32, torch.int64) else to(offsets, torch.int32)


def sample(prim, shape, seed, offsets=None, enclosing: bool = False, **params):
    """`prim` (rand/randn/randint) drawn at `offsets`, else at the global offsets of `shape`."""
    seed = seed_value(seed)
    offsets = offsets_for(shape, enclosing) if offsets is None else _explicit_offsets(offsets)
    return apply(prim, seed, offsets, **params)


def check_int_range(low, high) -> None:
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
        raise TracingError(f"randint's low and high must be ints, got {low!r} and {high!r}")
    if not low < high:
        raise TracingError(f"randint needs low < high, got low={low}, high={high}")
    if low < INT32_BOUNDS[0] or high > INT32_BOUNDS[1]:
        raise TracingError(f"randint draws int32 values: low and high must lie in [-2**31, 2**31], "
                           f"got [{low}, {high})")


# --- torch's spellings: a fresh seed per call site and kernel call ----------------------------
_UNIFORM_BELOW_ONE = {dtype: 1 - torch.finfo(dtype).eps / 2 for dtype in (torch.float16, torch.bfloat16)}


def _floating(name: str, dtype: torch.dtype) -> torch.dtype:
    if not dtype.is_floating_point:
        raise UnsupportedOp(f"torch.{name} of dtype {dtype} inside a tile loop: it draws floating-point "
                            "values (as torch refuses it); pass dtype=torch.float32")
    return dtype


def _no_generator(name: str, kwargs) -> None:
    if kwargs.get("generator") is not None:
        raise UnsupportedOp(f"torch.{name}(generator=...) inside a tile loop: the kernel draws its seed from "
                            "torch's default generator (seed it with torch.manual_seed), or use "
                            "tl.rand(shape, seed) with a seed of your own")


def _uniform(shape, dtype, name):
    values = sample(rand_p, shape, drawn_seed(), enclosing=True)
    dtype = _floating(name, dtype)
    if dtype in _UNIFORM_BELOW_ONE:  # rounding to a half dtype must not reach 1.0
        return clamp(to(values, dtype), max=_UNIFORM_BELOW_ONE[dtype])
    return to(values, dtype)


def _normal(shape, dtype, name):
    return to(sample(randn_p, shape, drawn_seed(), enclosing=True), _floating(name, dtype))


@op("rand_like", method=False)
def rand_like(x, *, dtype=None, **kwargs):
    _no_generator("rand_like", kwargs)
    x = value_of(x)
    return _uniform(x.shape, dtype or x.dtype, "rand_like")


@op("randn_like", method=False)
def randn_like(x, *, dtype=None, **kwargs):
    _no_generator("randn_like", kwargs)
    x = value_of(x)
    return _normal(x.shape, dtype or x.dtype, "randn_like")


@op("rand", method=False)
def rand(*size, dtype=None, **kwargs):
    _no_generator("rand", kwargs)
    return _uniform(shape_entries(_shape_args(size)), dtype or torch.float32, "rand")


@op("randn", method=False)
def randn(*size, dtype=None, **kwargs):
    _no_generator("randn", kwargs)
    return _normal(shape_entries(_shape_args(size)), dtype or torch.float32, "randn")


@op("randint_like", method=False)
def randint_like(x, low_or_high, high=None, *, dtype=None, **kwargs):
    _no_generator("randint_like", kwargs)
    low, high = (0, low_or_high) if high is None else (low_or_high, high)
    check_int_range(low, high)
    x = value_of(x)
    return to(sample(randint_p, x.shape, drawn_seed(), enclosing=True, low=low, high=high), dtype or x.dtype)


def dropout_scale(p: float) -> float:
    """1 / (1 - p) for a runtime dropout probability (0 where p is 1: nothing is kept), checked as torch checks it."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
    return 1 / (1 - p) if p != 1 else 0.0


@op("dropout", method=False)
def dropout(x, p=0.5, training=True, inplace=False, *, train=None):
    """Zero each element with probability p, scale the rest by 1/(1-p) (torch's rule: `x * mask / (1-p)`)."""
    training = training if train is None else train
    if isinstance(p, RuntimeScalar) and training:  # a runtime probability: checked and inverted at each call
        keep = sample(rand_p, value_of(x).shape, drawn_seed(), enclosing=True) < 1 - p
        return torch.where(keep, value_of(x) * scalars.host_call(dropout_scale, p), value_of(x) * 0)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ShapeError(f"dropout probability has to be between 0 and 1, but got {p!r}")
    if inplace:
        raise UnsupportedOp("dropout(inplace=True) inside a tile loop: device values are not written in "
                            "place; use y = F.dropout(x, p)")
    x = value_of(x)
    _floating("dropout", x.dtype)
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    keep = sample(rand_p, x.shape, drawn_seed(), enclosing=True) < 1 - p
    return torch.where(keep, x * (1 / (1 - p)), x * 0)
