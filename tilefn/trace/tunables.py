"""`register_tunable` while tracing: a kernel's own knob, valued from the Config the trace runs under.

The trace state holds the Config's `tunables` values; each call checks its choices, records a
`Tunable` (kept on the Program, searched by the tuner) and returns the Config's value or the default.
"""
from __future__ import annotations

from ..errors import ConfigError, SourceInfo, TracingError
from . import state as st
from .ir import Tunable
from .naming import kernel_name

CHOICE_TYPES = (bool, int, float, str)


def _typed(choices) -> tuple:
    """Choices compared with their types (so (1, 2) and (1.0, 2.0) differ)."""
    return tuple((type(c), c) for c in choices)


def _check_choices(name: str, choices: tuple) -> None:
    if not choices:
        raise TracingError(f"register_tunable({name!r}): choices must not be empty")
    bad = [c for c in choices if not isinstance(c, CHOICE_TYPES)]
    if bad:
        raise TracingError(f"register_tunable({name!r}): choices are ints, floats, bools or strs, "
                           f"got a {type(bad[0]).__name__}")
    if len(set(choices)) != len(choices):
        raise TracingError(f"register_tunable({name!r}): choices must be distinct, got {list(choices)}")


def _matching(choices: tuple, value):
    """The choice equal to `value` (a bool matches only a bool), or None."""
    return next((c for c in choices if c == value and isinstance(c, bool) == isinstance(value, bool)), None)


def register(name, choices, default=None):
    """Record the knob `name` in the current trace and return its value under the traced Config."""
    state = st.require()
    if not isinstance(name, str) or not name.isidentifier():
        raise TracingError(f"register_tunable: the name must be an identifier (a str), got {name!r}")
    if isinstance(choices, (str, bytes)) or not hasattr(choices, "__iter__"):
        raise TracingError(f"register_tunable({name!r}): choices are a sequence of values, got {choices!r}")
    choices = tuple(choices)
    _check_choices(name, choices)
    default = choices[0] if default is None else _matching(choices, default)
    if default is None:
        raise TracingError(f"register_tunable({name!r}): the default is not one of {list(choices)}")
    known = state.tunables.get(name)
    if known is not None and (_typed(known.choices), known.default) != (_typed(choices), default):
        raise TracingError(f"register_tunable({name!r}) is registered twice with different choices: "
                           f"{list(known.choices)} and {list(choices)}")
    value = default
    if name in state.tunable_values:
        value = _matching(choices, state.tunable_values[name])
        if value is None:
            raise ConfigError(f"Config value {name}={state.tunable_values[name]!r} is not one of {list(choices)}")
    state.tunables[name] = Tunable(name, choices, default, value)
    return value


def check_claimed(state, fn) -> None:
    """Every Config tunable names a knob the kernel registered."""
    unknown = sorted(set(state.tunable_values) - set(state.tunables))
    if unknown:
        code = getattr(fn, "__code__", None)
        source = SourceInfo(code.co_filename, code.co_firstlineno, code.co_name) if code is not None else None
        raise ConfigError(f"Config tunables {unknown} are not registered by {kernel_name(fn)} "
                          f"(it registers {sorted(state.tunables)} with register_tunable)", source=source)
