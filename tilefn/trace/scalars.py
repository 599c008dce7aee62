"""Runtime scalars: Python float arguments, passed to the kernel at every call instead of compiled in.

A float argument (at the top level, or inside a list, tuple, dict, dataclass or a function's
captures) is a program input `Var(PyScalarType(float))` while tracing, stood for by a
`RuntimeScalar`: so a new value reuses the Program and its executable. Its type is the weakly typed
Python number's, so `x * eps` has torch's dtype (a float does not promote a tensor: f16 stays f16).

- In device ops it is an operand like a Python number (`to_atom` gives its Var).
- Arithmetic and comparisons of runtime scalars with each other and with Python numbers, on the host
  or in a tile loop, are host equations (Python's own operators, run by the launcher before the
  kernel), giving new runtime scalars: `1.0 / eps`, `1 - beta`, `beta == 0.0`.
- Host code that needs the number itself (`float(eps)`, `if eps > 0:` outside a tile loop,
  `range(int(n))`, `math.sqrt(eps)`, a shape) is a TracingError at the user's line that says how to
  make the argument static (`static_argnames=` or `tl.specialize`); `tl.specialize(eps)` asks the
  trace to start again with the parameter static (`Specialize`).
"""
from __future__ import annotations

import operator

import torch

from ..errors import TracingError, user_source
from . import state as st
from .ir import Eqn, Var
from .primitives import convert_p, host_p
from .proxies import DeviceValue, Proxy, Tile, apply, call_device_op
from .types import PyScalarType

# the dtype a runtime scalar of each kind has in the kernel (torch computes with the double, cast
# to each op's compute type: the kernel casts from float64 at each use)
DEVICE_DTYPES = {float: torch.float64, bool: torch.bool}
_SAMPLES = ({float: 0.5, bool: True}, {float: 1.7, bool: False})  # stand-ins to learn an operator's result kind


class Specialize(Exception):
    """Raised by `tl.specialize` on a runtime scalar: the trace starts again with `params` static
    (the parameters it is computed from)."""

    def __init__(self, params: frozenset):
        super().__init__(sorted(params))
        self.params = params


def is_runtime_scalar(atom) -> bool:
    """Whether an IR operand is a runtime scalar's Var (a kernel argument, not a literal)."""
    return isinstance(atom, Var) and isinstance(atom.type, PyScalarType)


class RuntimeScalar(Proxy):
    """A Python number known only at the call (a float argument, or host arithmetic on one)."""

    def __init__(self, var: Var, params: frozenset, name: str):
        self.ir_var, self.params, self.name = var, params, name  # params: the parameter indices it comes from

    @property
    def kind(self) -> type:
        return self.ir_var.type.kind

    def __repr__(self):
        return f"RuntimeScalar({self.name}: {self.kind.__name__})"

    def device_value(self, dtype: torch.dtype | None = None) -> DeviceValue:
        """This scalar as a 0-d device value of `dtype` (default: float32 for a float, as torch.full)."""
        return apply(convert_p, self, dtype=dtype or (torch.float32 if self.kind is float else torch.bool))

    def _needs_number(self, *_):
        raise TracingError(
            f"`{self.name}` is a runtime float argument (a new value reuses the compiled kernel), and this uses it "
            "as a Python number on the host (float(), int(), bool(), an `if` outside a tile loop, a shape, "
            f"math.*). Make it static: tfn.jit(..., static_argnames=({self.name!r},)), or "
            f"`{self.name} = tl.specialize({self.name})` (hl.specialize) at the top of the kernel; each value then "
            "compiles once")

    __float__ = __int__ = __index__ = __bool__ = __round__ = __trunc__ = __floor__ = __ceil__ = _needs_number
    __complex__ = _needs_number

    def __format__(self, spec):
        return self._needs_number()

    __hash__ = object.__hash__


def _host_arithmetic(fn, args, name: str) -> RuntimeScalar:
    """`fn(*args)` computed on the host before the kernel (Python's operator), as a new runtime scalar."""
    state = st.require()
    kind = _result_kind(fn, args)
    if kind not in DEVICE_DTYPES:
        raise TracingError(f"this operator on a runtime float gives a {kind.__name__}; only float and bool "
                           "runtime values are supported: make the argument static (static_argnames= or "
                           "tl.specialize)")
    ir_args = tuple(a.ir_var if isinstance(a, RuntimeScalar) else a for a in args)
    out = Var(PyScalarType(kind))
    params = {"fn": fn, "args": ir_args, "kwargs": {}, "out_kind": "value", "out_types": (out.type,)}
    inputs = tuple(a for a in ir_args if isinstance(a, Var))
    state.host_eqns.append(Eqn(host_p, inputs, (out,), params, user_source()))
    params = frozenset().union(*(a.params for a in args if isinstance(a, RuntimeScalar)))
    return RuntimeScalar(out, params, name)


def host_call(fn, *args) -> RuntimeScalar:
    """`fn(*args)` (a float or bool function of runtime scalars and numbers) run on the host at each call."""
    return _host_arithmetic(fn, args, next(a.name for a in args if isinstance(a, RuntimeScalar)))


def _result_kind(fn, args) -> type:
    """The type `fn` gives for runtime scalars of these kinds (float where the stand-ins fail: 1 / (p - 0.5))."""
    for samples in _SAMPLES:
        try:
            return type(fn(*[samples[a.kind] if isinstance(a, RuntimeScalar) else a for a in args]))
        except (ArithmeticError, ValueError):
            continue
    return float


_OPERATORS = {  # dunder -> (Python operator, reflected)
    "__add__": (operator.add, False), "__radd__": (operator.add, True),
    "__sub__": (operator.sub, False), "__rsub__": (operator.sub, True),
    "__mul__": (operator.mul, False), "__rmul__": (operator.mul, True),
    "__truediv__": (operator.truediv, False), "__rtruediv__": (operator.truediv, True),
    "__floordiv__": (operator.floordiv, False), "__rfloordiv__": (operator.floordiv, True),
    "__mod__": (operator.mod, False), "__rmod__": (operator.mod, True),
    "__pow__": (operator.pow, False), "__rpow__": (operator.pow, True),
    "__eq__": (operator.eq, False), "__ne__": (operator.ne, False), "__lt__": (operator.lt, False),
    "__le__": (operator.le, False), "__gt__": (operator.gt, False), "__ge__": (operator.ge, False),
}
_MIRRORED = {"__eq__": "__eq__", "__ne__": "__ne__", "__lt__": "__gt__", "__le__": "__ge__", "__gt__": "__lt__",
             "__ge__": "__le__"}


def _binary(name: str, fn, reflected: bool):
    def method(self, other):
        if isinstance(other, (DeviceValue, Tile)):  # a device op, with this scalar as its number operand
            mirrored = _MIRRORED.get(name, "__" + name[3:] if reflected else "__r" + name[2:])
            return call_device_op(mirrored, (other, self), {})
        if isinstance(other, bool) or not isinstance(other, (int, float, RuntimeScalar)):
            return NotImplemented
        args = (other, self) if reflected else (self, other)
        return _host_arithmetic(fn, args, self.name)

    method.__name__ = name
    return method


for _name, (_fn, _reflected) in _OPERATORS.items():
    setattr(RuntimeScalar, _name, _binary(_name, _fn, _reflected))
RuntimeScalar.__neg__ = lambda self: _host_arithmetic(operator.neg, (self,), self.name)
RuntimeScalar.__pos__ = lambda self: self
RuntimeScalar.__abs__ = lambda self: _host_arithmetic(operator.abs, (self,), self.name)
