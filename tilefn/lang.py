"""The in-kernel vocabulary, with Helion's `helion.language` names. Each function binds primitives."""
from __future__ import annotations

import torch

from .errors import ShapeError
from .trace import atomics, indexing, jagged, signals, tunables
from .trace import primitives as P
from .trace.ops import arrange, creation, matmul, random_numbers, reductions, scans, sorting
from .trace import state as st
from .trace.loops import TileLoop, barrier, loop_dims_from
from .trace.proxies import BlockSize, DeviceValue, Tile
from .trace.scalars import RuntimeScalar, Specialize
from .trace.sizes import SizeExpr

__all__ = ["tile", "grid", "zeros", "full", "arange", "load", "store", "dot",
           "register_block_size", "register_tunable", "static_range", "split", "join", "Tile", "atomic_add",
           "atomic_and", "atomic_or", "atomic_xor", "atomic_max", "atomic_min", "atomic_xchg", "atomic_cas", "rand",
           "randn", "randint", "rand4x", "barrier", "jagged_tile", "associative_scan", "reduce", "cumsum", "cumprod",
           "sort", "topk", "gather", "specialize", "signal", "wait"]


def tile(begin_or_end, end_or_none=None, block_size=None):
    """Iterate over tiles of a range: `tile(n)`, `tile([m, n])`, `tile(x.shape)`, `tile(begin, end)`.

    Yields one `Tile` (or a tuple of them for a list of sizes). The outermost tile loop is the
    launch grid; nested loops run sequentially inside the kernel.
    """
    if isinstance(begin_or_end, torch.Size):
        begin_or_end = list(begin_or_end)
    dims, multi = loop_dims_from(begin_or_end, end_or_none, block_size)
    return TileLoop(dims, multi)


def jagged_tile(parent):
    """Iterate over tiles of a ragged inner dimension: `parent` (a device value over enclosing tiles)
    holds each lane's end; lanes past their end are masked off in loads, stores and reductions."""
    return jagged.jagged_tile(parent)


def grid(begin_or_end, end_or_none=None):
    """Iterate over single indices (block size 1): yields an int32 scalar per iteration."""
    if isinstance(begin_or_end, torch.Size):
        begin_or_end = list(begin_or_end)
    dims, multi = loop_dims_from(begin_or_end, end_or_none, None, grid=True)
    return TileLoop(dims, multi)


def register_block_size(extent_or_min, max_or_none=None) -> BlockSize:
    """A block size that several tile loops share; the config picks its value."""
    extent = max_or_none if max_or_none is not None else extent_or_min
    return BlockSize(st.require().new_block(extent if isinstance(extent, int) else None))


def register_tunable(name: str, choices, default=None):
    """A knob of this kernel that `tfn.tune` searches: the Config's `tunables[name]`, else the default.

    `choices` are ints, floats, bools or strs; the default is the first unless `default` names
    another. The value is a plain Python value while tracing (a block size, a loop count, a flag).
    """
    return tunables.register(name, choices, default)


def specialize(value):
    """`eps = tl.specialize(eps)`: a float argument as a Python number, compiled in (each value compiles once;
    host code may then compute with it: `if eps > 0:`, `math.sqrt(eps)`). Other values come back as they are
    (ints, shapes and the rest are static already); a list or tuple is specialised item by item. Under
    static_shapes=False a symbolic size comes back as its int, guarded: one Program per value."""
    if isinstance(value, RuntimeScalar):
        raise Specialize(value.params)  # the trace starts again with its parameters static
    if isinstance(value, SizeExpr):
        return int(value)  # (an `==` guard on the size: `tilefn.trace.sizes`)
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        return type(value)(specialize(v) for v in value) if not hasattr(value, "_fields") else value
    if isinstance(value, DeviceValue):
        raise TypeError("tl.specialize takes a float argument or a shape, not a device value (its value is only "
                        "known on the GPU)")
    return value


def static_range(*args):
    """A Python `range` unrolled at trace time."""
    return range(*args)


def zeros(shape, dtype=torch.float32):
    """A tile of zeros; `shape` holds ints and tiles."""
    return creation.full_like_shape(creation.shape_entries(shape), 0, dtype)


def full(shape, value, dtype=torch.float32):
    """A tile filled with `value`."""
    return creation.full_like_shape(creation.shape_entries(shape), value, dtype)


def arange(start, end=None, step=1, dtype=torch.int32):
    """int32 indices [start, end) by `step`: static ints, or device scalars `s, s + k` with k known while
    tracing (an int, or int arithmetic on block sizes: `tilefn.trace.device_slices`)."""
    return creation.arange(start, end, step, dtype=dtype)


def dot(a, b, acc=None, out_dtype=None, precision=None):
    """Matrix product with float32 accumulation: `a @ b + acc`; float32 inputs multiply at `precision`
    ("ieee", "tf32", "tf32x3"; default: the kernel's `dot_precision`)."""
    return matmul.dot(a, b, acc, out_dtype, precision)


def split(x):
    """A value whose last dimension has size 2 -> its two halves `(x[..., 0], x[..., 1])`."""
    return arrange.split(x)


def join(a, b):
    """Two values of one dtype, broadcast together, joined along a new last dimension of size 2."""
    return arrange.join(a, b)


def _index_list(index):
    if isinstance(index, (list, tuple)):
        return tuple(index)
    return (index,)


def load(tensor, index, extra_mask=None):
    """`tensor[index]`, with `extra_mask` lanes (False) read as 0."""
    _check_mask(extra_mask)
    return indexing.load(tensor, _index_list(index), extra_mask)


def store(tensor, index, value, extra_mask=None):
    """`tensor[index] = value`, skipping lanes where `extra_mask` is False."""
    _check_mask(extra_mask)
    indexing.store(tensor, _index_list(index), value, extra_mask)


def _check_mask(mask):
    if mask is not None and not (isinstance(mask, DeviceValue) and mask.dtype == torch.bool):
        raise ShapeError("extra_mask must be a boolean device value")


def _atomic(name: str, update: str):
    def atomic(target, index, value, sem: str = "relaxed", scope: str = "gpu"):
        return atomics.atomic(name, target, _index_list(index), value, sem=sem, scope=scope)

    atomic.__name__ = atomic.__qualname__ = name
    atomic.__doc__ = (f"Atomically set `target[index]` to {update}; returns the old values. `sem`: "
                      "'relaxed' (default), 'acquire', 'release' or 'acq_rel'; `scope`: 'gpu', 'cta' or 'sys'.")
    return atomic


atomic_add = _atomic("atomic_add", "its value + `value`")
atomic_and = _atomic("atomic_and", "its value & `value` (integer targets)")
atomic_or = _atomic("atomic_or", "its value | `value` (integer targets)")
atomic_xor = _atomic("atomic_xor", "its value ^ `value` (integer targets)")
atomic_max = _atomic("atomic_max", "the larger of its value and `value`")
atomic_min = _atomic("atomic_min", "the smaller of its value and `value`")
atomic_xchg = _atomic("atomic_xchg", "`value`")


def atomic_cas(target, index, expected, value, sem: str = "relaxed", scope: str = "gpu"):
    """Atomically set `target[index]` to `value` where it equals `expected`; returns the old values."""
    return atomics.atomic("atomic_cas", target, _index_list(index), expected, value, sem=sem, scope=scope)


def signal(pad, index, signal: int = 1, wait_for: int | None = None, op: str = "atomic_xchg", sem: str = "release",
           scope: str = "gpu", skip_sync: bool = False):
    """Send `signal` to the signal pad entries `pad[index]`; returns their old values (`tilefn.trace.signals`)."""
    return signals.signal(pad, _index_list(index), signal, wait_for, op, sem, scope, skip_sync)


def wait(pad, index, signal: int = 1, update: int | None = None, op: str = "ld", sem: str = "acquire",
         scope: str = "gpu", skip_sync: bool = False) -> None:
    """Spin until every signal pad entry `pad[index]` equals `signal` (`tilefn.trace.signals`)."""
    signals.wait(pad, _index_list(index), signal, update, op, sem, scope, skip_sync)


def rand(shape, seed, offsets=None):
    """Uniform float32 in [0, 1), one Philox draw (Triton's `tl.rand`) per element from `seed` (an int,
    an integer device scalar or a one-element tensor) and the element's offset: its row-major index in
    the full extents of `shape` (ints and tiles), so every Config gives the same values. `offsets`
    (an integer device value) gives the counters, and the shape, instead."""
    return random_numbers.sample(P.rand_p, creation.shape_entries(shape), seed, offsets)


def randn(shape, seed, offsets=None):
    """Standard normal float32 (Triton's `tl.randn`: Box-Muller), drawn as `rand` draws."""
    return random_numbers.sample(P.randn_p, creation.shape_entries(shape), seed, offsets)


def rand4x(shape, seed, offsets=None):
    """Four independent uniform float32 tensors in [0, 1) from one Philox draw per element (Triton's
    `tl.rand4x`: about 4x cheaper than four `rand` calls), at `rand`'s offsets."""
    return random_numbers.sample(P.rand4x_p, creation.shape_entries(shape), seed, offsets)


def randint(shape, seed, low, high):
    """int32 in [low, high), drawn as `rand` draws: `low + |32-bit draw as int32| % (high - low)`."""
    random_numbers.check_int_range(low, high)
    return random_numbers.sample(P.randint_p, creation.shape_entries(shape), seed, low=low, high=high)


def associative_scan(combine_fn, values, dim: int, reverse: bool = False):
    """Inclusive scan of `values` (a device value or a tuple of them, one shape) along `dim` with the associative
    `combine_fn`: `combine_fn(a, b)`, or for tuples `combine_fn(left, right)` / `combine_fn(*left, *right)`,
    traced once on scalars (elementwise torch ops). `reverse=True` scans from the end."""
    return scans.associative_scan(combine_fn, values, dim, reverse)


def reduce(combine_fn, values, dim=None, other=None, keep_dims: bool = False):
    """`values` reduced along `dim` (None: all) with the associative, commutative `combine_fn` (as in
    `associative_scan`). Padded lanes are skipped; `other` fills them instead and must be the identity."""
    return scans.reduce(combine_fn, values, dim, other, keep_dims)


def cumsum(x, dim: int, reverse: bool = False):
    """torch.cumsum along `dim`; `reverse=True` sums from the last element to the first."""
    return reductions.cumulative(P.cumsum_p, x, dim, reverse=reverse)


def cumprod(x, dim: int, reverse: bool = False):
    """torch.cumprod along `dim`; `reverse=True` from the last element to the first."""
    return reductions.cumulative(P.cumprod_p, x, dim, reverse=reverse)


def sort(x, dim: int = -1, descending: bool = False):
    """Sorted values along `dim` (Triton's name; torch.sort gives the indices too)."""
    return sorting.sort(x, dim, descending).values


def topk(x, k: int, dim: int = -1):
    """The k largest values along `dim`, largest first (Triton's name; torch.topk gives the indices too)."""
    return sorting.topk(x, k, dim).values


def gather(src, index, axis: int):
    """`src`'s values at `index` along `axis` (Triton's argument order; torch.gather(src, axis, index))."""
    return sorting.gather(src, axis, index)
