"""What a kernel reads from its globals and closure: part of what its Programs are specialised on.

A traced Program folds in the values a kernel function reads from module globals and closure
cells. So that a later change is never ignored, each traced function lists its captures once (the
global names its code, nested code included, reads, and its closure cells) and every call
compares a snapshot of them (`capture_key`): Python values by value (numbers, strings, dtypes,
and lists, tuples, dicts and sets of them: a mutated captured dict counts; numpy arrays by their
bytes, so an array changed in place retraces), tensors by metadata
(dtype, shape, strides, device, 16-byte alignment: their data is read by reference at every
call, see `Capture.read`; host code reading their values is keyed on them, `captured_calls.py`),
other objects (functions, classes, instances) by identity. Modules are left out: rebinding `torch` is not a thing kernels do, and they would cost every call.
A kernel that mutates a captured container while tracing (appending to a global list) therefore
retraces at its next call; keep such state in an object (compared by identity) instead.
"""
from __future__ import annotations

import types
from typing import Any

import attrs
import numpy as np
import torch

from .naming import kernel_function
from .types import is_aligned

PLAIN = (bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device)


@attrs.frozen
class Capture:
    """One name a kernel reads from outside: a global (`scope` is the globals dict) or a closure cell."""

    name: str
    scope: Any = attrs.field(eq=False)  # dict (globals) or a cell

    def read(self):
        """The name's current value (a KeyError or ValueError if it is gone: the caller retraces)."""
        if isinstance(self.scope, dict):
            return self.scope[self.name]
        return self.scope.cell_contents


def _global_names(code: types.CodeType) -> list[str]:
    """The names `code` and the code objects nested in it may read as globals, in first-use order."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += [n for n in _global_names(const) if n not in names]
    return names


def captures_of(fn) -> tuple:
    """The globals and closure cells `fn` reads whose values are not modules (see the module docstring)."""
    fn = kernel_function(fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return ()
    scope = fn.__globals__
    out = [Capture(n, scope) for n in _global_names(code)
           if n in scope and not isinstance(scope[n], types.ModuleType)]
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        try:
            if isinstance(cell.cell_contents, types.ModuleType):
                continue
        except ValueError:  # an empty cell (a name assigned later): watch it too
            pass
        out.append(Capture(name, cell))
    return tuple(out)


def snapshot(value):
    """A hashable stand-in for `value` that changes when what the kernel could read of it changes."""
    if isinstance(value, torch.Tensor):
        return ("tensor", value.dtype, tuple(value.shape), value.stride(), value.device, is_aligned(value))
    if isinstance(value, PLAIN):
        return (type(value), value)
    if isinstance(value, np.ndarray):  # by value: host code reads its numbers while tracing (`int(TABLE[0])`)
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(snapshot(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return (type(value), frozenset(snapshot(v) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((snapshot(k), snapshot(v)) for k, v in value.items()))
    return ("object", Identity(value))


@attrs.frozen(eq=False)
class Identity:
    """An object compared by identity (held, so its id cannot be reused while a key holds it)."""

    value: Any

    def __eq__(self, other):
        return isinstance(other, Identity) and other.value is self.value

    def __hash__(self):
        return id(self.value)


def capture_key(captures: tuple) -> tuple:
    """The snapshot of every capture's current value (a gone name snapshots as such)."""
    out = []
    for capture in captures:
        try:
            out.append(snapshot(capture.read()))
        except (KeyError, ValueError):
            out.append(("unbound",))
    return tuple(out)
