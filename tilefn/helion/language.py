"""`tilefn.helion.language` (used as `hl`): tilefn.lang under Helion's `helion.language` names.

Names that map one to one come from `tilefn.lang`; Helion's tile accessors, `specialize` and
`register_tunable` are defined here. Helion names without a tilefn counterpart still import, and
raise NotImplementedError naming themselves when a kernel calls them.
"""
from __future__ import annotations

import torch

from .. import lang as _lang
from ..lang import (Tile, barrier, dot, grid, jagged_tile, join, register_block_size, split, static_range,  # noqa: F401
                    signal, store, tile, wait)
from ..trace.atomics import SEMS as _SEMS
from ..trace.proxies import DeviceValue as _DeviceValue
from ..trace.scalars import RuntimeScalar as _RuntimeScalar
from ..trace.sizes import SizeExpr as _SizeExpr
from . import exc as _exc
from .autotuner import FRAGMENTS

__all__ = ["tile", "grid", "zeros", "full", "arange", "load", "store", "dot", "register_block_size",
           "static_range", "Tile", "specialize", "register_tunable", "tile_index", "tile_begin",
           "tile_end", "tile_block_size", "tile_id", "constexpr", "cumsum", "cumprod", "associative_scan", "reduce",
           "atomic_add", "atomic_and",
           "atomic_or", "atomic_xor", "atomic_max", "atomic_min", "atomic_xchg", "atomic_cas", "rand", "rand4x", "randint",
           "split", "join", "barrier", "jagged_tile", "signal", "wait"]


def zeros(shape, dtype=torch.float32, device=None):
    """A tile of zeros; `shape` holds ints and tiles (`device` is the kernel's, as in Helion)."""
    return _lang.zeros(shape, dtype=dtype)


def full(shape, value, dtype=torch.float32, device=None):
    """A tile filled with `value`."""
    return _lang.full(shape, value, dtype=dtype)


def arange(start_or_length, end=None, step=1, dtype=None, device=None):
    """Indices [start, end) (or [0, length)) by `step`, int32 unless `dtype` says otherwise."""
    return _lang.arange(start_or_length, end, step, dtype=dtype or torch.int32)


def load(tensor, index, extra_mask=None, eviction_policy=None):
    """`tensor[index]`, lanes where `extra_mask` is False read as 0 (`eviction_policy` is a hint tilefn
    takes from the config's `load_eviction_policies` instead)."""
    return _lang.load(tensor, index, extra_mask)


def specialize(value):
    """Helion compiles a separate kernel per value of a specialized size; tilefn specialises every
    shape and int argument already, so this returns the value itself (ints, or tuples of them). A float
    argument is a runtime value in tilefn: `hl.specialize(eps)` compiles it in (`tilefn.lang.specialize`)."""
    if isinstance(value, (torch.Size, tuple, list)):
        return type(value)(specialize(v) for v in value) if not isinstance(value, torch.Size) else tuple(value)
    if isinstance(value, (_RuntimeScalar, float, _SizeExpr)):
        return _lang.specialize(value)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, _DeviceValue):
            raise TypeError("hl.specialize takes a shape (an int from tensor.size()), not a device value")
        raise TypeError(f"hl.specialize takes an int or a tuple of ints, got {type(value).__name__}")
    return value


def register_tunable(name: str, fragment):
    """A kernel's own knob, searched by tuning: its value comes from the Config
    (`helion.Config(name=value)`), else the fragment's default (`tilefn.lang.register_tunable`)."""
    if not isinstance(fragment, FRAGMENTS):
        raise TypeError("hl.register_tunable(name, fragment): fragment is one of tilefn.helion.autotuner's "
                        f"{[f.__name__ for f in FRAGMENTS]}, got {type(fragment).__name__}")
    return _lang.register_tunable(name, fragment.values(), default=fragment.default())


def cumsum(input_tensor, dim, reverse=False):
    """Inclusive prefix sum along `dim`; `reverse=True` from the last element to the first."""
    return _lang.cumsum(input_tensor, dim, reverse)


def cumprod(input_tensor, dim, reverse=False):
    """Inclusive prefix product along `dim`; `reverse=True` from the last element to the first."""
    return _lang.cumprod(input_tensor, dim, reverse)


def associative_scan(combine_fn, input_tensor, dim, reverse=False):
    """Scan with a user combine function (`tilefn.lang.associative_scan`)."""
    return _lang.associative_scan(combine_fn, input_tensor, dim, reverse)


def reduce(combine_fn, input_tensor, dim=None, other=None, keep_dims=False):
    """Reduction with a user combine function (`tilefn.lang.reduce`). Helion pads masked lanes with `other`
    (default 0); here padded lanes are skipped unless `other` is given, so the default is right for any combine."""
    return _lang.reduce(combine_fn, input_tensor, dim, other, keep_dims)


def rand(shape, seed, device=None, offsets=None):
    """Uniform float32 in [0, 1) from `seed` and each element's global index (`tilefn.lang.rand`)."""
    return _lang.rand(shape, seed, offsets)


def rand4x(seed, offsets, device=None):
    """Four uniform float32 tensors shaped like `offsets`, from one Philox draw per offset (`tilefn.lang.rand4x`)."""
    return _lang.rand4x([], seed, offsets)


def randint(shape, low, high, seed, device=None):
    """int32 in [low, high) from `seed` and each element's global index (`tilefn.lang.randint`)."""
    return _lang.randint(shape, seed, low, high)


def tile_index(t: Tile):
    """The indices of tile `t` (same as `t.index`)."""
    return t.index


def tile_begin(t: Tile):
    return t.begin


def tile_end(t: Tile):
    return t.end


def tile_block_size(t: Tile):
    return t.block_size


def tile_id(t: Tile):
    return t.id


class constexpr:  # noqa: N801 - Helion's spelling
    """Annotation for arguments Helion treats as compile-time constants: ints and bools are in tilefn
    anyway; a float parameter annotated `hl.constexpr` is compiled in (`static_argnames`,
    `constexpr_params`) rather than a runtime value. `hl.constexpr(v)` returns `v`."""

    def __new__(cls, value):
        return value


def constexpr_params(fn) -> tuple:
    """The names of `fn`'s parameters annotated `hl.constexpr` (the class, or the text under
    `from __future__ import annotations`)."""
    names = []
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        if annotation is constexpr or isinstance(annotation, str) and annotation.split(".")[-1] == "constexpr":
            names.append(name)
    return tuple(n for n in names if n != "return")


def _helion_atomic(name: str):
    """`hl.<name>(target, index, *values, sem="relaxed")`: `tilefn.lang.<name>`, with Helion's errors."""
    core = getattr(_lang, name)

    def atomic(target, index, *values, sem: str = "relaxed", scope: str = "gpu"):
        if sem not in _SEMS:
            raise _exc.InternalError(f"Invalid memory semantic {sem!r}. Valid options are: {', '.join(_SEMS)}")
        if isinstance(target, _DeviceValue):
            raise _exc.AtomicOnDeviceTensor(f"hl.{name}() target must be a tensor in memory (a kernel argument "
                                            "or a tensor made on the host), not a device value")
        return core(target, index, *values, sem=sem, scope=scope)

    atomic.__name__ = atomic.__qualname__ = name
    atomic.__doc__ = core.__doc__
    return atomic


for _name in ("atomic_add", "atomic_and", "atomic_or", "atomic_xor", "atomic_max", "atomic_min", "atomic_xchg",
              "atomic_cas"):
    globals()[_name] = _helion_atomic(_name)


def _missing(name: str, why: str = ""):
    def missing(*args, **kwargs):
        raise NotImplementedError(f"helion.language.{name} has no tilefn counterpart yet{why}")

    missing.__name__ = name
    missing.__qualname__ = name
    return missing


_MISSING = {
    "vtile": ": loop with hl.tile(begin, end) per row, or over the longest row with hl.load(extra_mask=...)",
    "inline_triton": "", "inline_asm_elementwise": "",
    "subscript": ": index with None / slices on the value instead",
    "register_reduction_dim": "",
    "dot_scaled": (": its block-scaled (MX) products need sm_100 tensor cores (tl.dot_scaled); scale the "
                   "operands and use hl.dot (float8 operands are supported)"),
}

for _name, _why in _MISSING.items():
    globals()[_name] = _missing(_name, _why)
del _name, _why
