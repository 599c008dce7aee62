"""The values `hl.register_tunable` returns while a helion kernel is traced under one Config.

Tracing runs the kernel function once; its `register_tunable` calls read the Config's values from
a context variable that the kernel's trace wrapper sets. One traced program exists per assignment
of tunable values (`Kernel._jit_for`).
"""
from __future__ import annotations

import contextvars
import functools
import warnings

from .config import ConfigError

_CURRENT: contextvars.ContextVar = contextvars.ContextVar("tilefn_helion_tunables", default=None)


class _State:
    def __init__(self, values: dict, kernel_name: str):
        self.values, self.kernel_name = values, kernel_name
        self.registered: dict = {}


def lookup(name: str, fragment):
    from .autotuner import FRAGMENTS

    state = _CURRENT.get()
    if state is None:
        raise RuntimeError("hl.register_tunable is called inside a helion.kernel function (while it runs)")
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"hl.register_tunable: the name must be an identifier, got {name!r}")
    if not isinstance(fragment, FRAGMENTS):
        raise TypeError("hl.register_tunable(name, fragment): fragment is one of tilefn.helion.autotuner's "
                        f"{[f.__name__ for f in FRAGMENTS]}, got {type(fragment).__name__}")
    if name in state.registered and state.registered[name] != fragment:
        raise ConfigError(f"hl.register_tunable({name!r}) is registered twice with different fragments")
    state.registered[name] = fragment
    if name not in state.values:
        value = fragment.default()
        warnings.warn(f"{state.kernel_name}: hl.register_tunable({name!r}) uses its default {value!r}; tilefn.tune "
                      f"does not search it: pass helion.Config({name}=...) to choose", stacklevel=3)
        return value
    value = state.values[name]
    if not fragment.valid(value):
        raise ConfigError(f"{state.kernel_name}: Config value {name}={value!r} is not {fragment.describe()}")
    return value


def with_tunables(fn, values: dict):
    """`fn` with `register_tunable` answering from `values`; a value no call claims is an error."""

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        state = _State(dict(values), fn.__name__)
        token = _CURRENT.set(state)
        try:
            result = fn(*args, **kwargs)
        finally:
            _CURRENT.reset(token)
        unknown = sorted(set(state.values) - set(state.registered))
        if unknown:
            raise ConfigError(f"{fn.__name__}: Config key(s) {unknown} are neither Helion config keys nor knobs "
                              "this kernel registers with hl.register_tunable")
        return result

    return traced
