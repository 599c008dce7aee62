"""User combine functions (`tl.associative_scan`, `tl.reduce`): traced once, on scalar proxies, into a Region.

The Region's params are the left values then the right values (one scalar per element of the scanned
tuple), its results the combined values, converted to the elements' dtypes. Its equations are scalar
pointwise ops only: the lowering emits them as a `@triton.jit` combine function beside the kernel, the
interpreter evaluates them on whole tensors (elementwise, so one evaluation combines every lane).
"""
from __future__ import annotations

import inspect


from ..errors import TracingError
from . import primitives as p
from . import state as st
from .ir import Region, Var
from .proxies import DeviceValue, apply, to_atom
from .state import RegionBuilder
from .types import TensorType

ALLOWED = frozenset({*p.POINTWISE, p.convert_p, p.full_p})  # what a combine region may hold


def _plain(fn):
    """The Python function under a decorator (`@tfn.jit`, `@helion.kernel`: Helion ignores those on combine fns)."""
    if not callable(fn):
        raise TracingError(f"the combine function must be callable, got {type(fn).__name__}")
    return inspect.unwrap(fn)


def _positional_count(fn) -> int | None:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin (torch.add, torch.maximum)
        return None
    if any(q.kind is q.VAR_POSITIONAL for q in params):
        return None
    return sum(q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD) for q in params)


def _call(fn, left, right, packed: bool):
    """Helion's two forms for tuples: fn(left_tuple, right_tuple), or fn(*left, *right) when it takes 4+ arguments."""
    if not packed:
        result = fn(left[0], right[0])
        return tuple(result) if isinstance(result, (tuple, list)) else (result,)
    count = _positional_count(fn)
    result = fn(*left, *right) if count is not None and count >= 4 else fn(tuple(left), tuple(right))
    if not isinstance(result, (tuple, list)):
        raise TracingError(f"a combine function over a tuple of {len(left)} values must return a tuple of "
                           f"{len(left)}, got a {type(result).__name__}")
    return tuple(result)


def _as_scalar(value, dtype, what: str):
    """A combine result as a scalar device value of `dtype` (a Python number is a constant)."""
    if isinstance(value, (bool, int, float)):
        return apply(p.full_p, shape=(), value=value, dtype=dtype)
    if not isinstance(value, DeviceValue):
        raise TracingError(f"{what} returned a {type(value).__name__}; it must return tensors computed from its "
                           "arguments")
    if value.shape != ():
        raise TracingError(f"{what} returned a value of shape {list(value.shape)}; it combines single "
                           "elements, so each result must be a scalar")
    return value if value.dtype == dtype else apply(p.convert_p, value, dtype=dtype)


def _check_closed(params, eqns, results, what: str) -> None:
    """Only the combine's own arguments and what it computes from them (no loads, no kernel values)."""
    defined = set(params)
    outer = TracingError(f"{what} uses a value from the kernel (a tile, a loaded or computed value); it may only "
                         "use its arguments and constants")
    for eqn in eqns:
        if eqn.prim not in ALLOWED:
            raise TracingError(f"{what} uses {eqn.prim}; a combine function may only compute elementwise with its "
                               "arguments (arithmetic, comparisons, torch.where, casts)", source=eqn.source)
        if any(isinstance(atom, Var) and atom not in defined for atom in eqn.inputs):
            raise TracingError(outer.message, source=eqn.source)
        defined.update(eqn.outputs)
    if any(isinstance(r, DeviceValue) and r.ir_var not in defined for r in results):
        raise outer


def combine_region(fn, dtypes, packed: bool, what: str) -> Region:
    """`fn` traced on scalar proxies (left values of `dtypes`, then right ones) into a Region."""
    state = st.require()
    plain = _plain(fn)
    builder = RegionBuilder(state.region)
    left = [DeviceValue(Var(TensorType((), d)), builder) for d in dtypes]
    right = [DeviceValue(Var(TensorType((), d)), builder) for d in dtypes]
    outer, state.region = state.region, builder
    try:
        results = _call(plain, left, right, packed)
        if len(results) != len(dtypes):
            raise TracingError(f"{what} returned {len(results)} values for a tuple of {len(dtypes)}")
        params = [v.ir_var for v in left + right]
        _check_closed(params, builder.eqns, results, what)
        results = [_as_scalar(r, d, what) for r, d in zip(results, dtypes)]
    finally:
        state.region = outer
        builder.closed = True
    return Region(params, builder.eqns, [to_atom(r) for r in results])
