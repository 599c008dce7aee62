"""Argument signature -> value (a Program, a Config, an executable), with a fast path for a repeated call.

`signature_key(args, kwargs)` is what a kernel is specialised on. `SignatureCache` stores one value
per key, made once (thread-safe), and remembers the most recent positional call's executable behind a
cheap guard, as one function (`fast`, `tilefn.fast_path`): a caller's fast path is

    fast = cache.fast
    if fast is not None and (out := fast(args)) is not MISS:
        return out

one generated function of straight-line checks and the host code, with no Python frame of the cache's own.
"""
from __future__ import annotations

import threading
from typing import Callable, NamedTuple

import torch

from .errors import ArgumentError
from .fast_path import fast_path
from .guard_source import also_checking, argument_lines, compile_guard, pointer_lines, tensor_guards_check, tensor_positions
from .trace.arguments import RUNTIME_ARG_TYPES, STATIC_ARG_TYPES, arg_key
from .trace.dynamic import dynamic_tensor_key
from .trace.types import is_aligned, tensor_problem


class CacheInfo(NamedTuple):
    """What a kernel has made so far (`kernel.cache_info()`, as functools.lru_cache's): Programs traced,
    executables compiled for calls, and tuning searches run."""

    traces: int
    compiles: int
    tunings: int


def signature_key(args, kwargs) -> tuple:
    """What a traced program is specialised on: tensor metadata and static argument values (a float's
    type only: its value is a runtime argument, `tilefn.trace.scalars`)."""
    key = []
    for x in args if not kwargs else (*args, *sorted(kwargs.items())):
        if isinstance(x, tuple) and kwargs:  # a (name, value) pair from kwargs
            key.append(x[0])
            x = x[1]
        if isinstance(x, torch.Tensor):
            if x.layout is not torch.strided:  # (no data pointer: tracing names the argument)
                raise ArgumentError(f"an argument {tensor_problem(x)}", source=None)
            key += (x.dtype, x.shape, x.stride(), x.device, is_aligned(x))
        elif isinstance(x, STATIC_ARG_TYPES):
            key += (type(x), x)
        elif isinstance(x, RUNTIME_ARG_TYPES):
            key.append(type(x))
        else:  # a list, a tuple, a function: its structure, static values and tensors' metadata
            key.append(arg_key(x, "an argument"))
    return tuple(key)


def describe_argument(x) -> str:
    """What the signature sees of one argument, as text: a tensor's dtype, shape, strides, device and
    alignment; a static value itself; a structure by its key."""
    if isinstance(x, torch.Tensor):
        return (f"{x.dtype} {tuple(x.shape)} strides {x.stride()} on {x.device}"
                f"{'' if is_aligned(x) else ' (not 16-byte aligned)'}")
    if isinstance(x, STATIC_ARG_TYPES):
        return repr(x)
    if isinstance(x, RUNTIME_ARG_TYPES):
        return f"{type(x).__name__} (a runtime value)"
    return repr(arg_key(x, "an argument"))


def signature_changes(names, before, after) -> str:
    """Why a call with `after` needs a new compile when `before` had one: each parameter whose
    description differs (`name: old -> new`), or "first call" when there is no `before`."""
    if before is None:
        return "first call"
    changed = [f"{name}: {old} -> {new}" for name, old, new in zip(names, before, after) if old != new]
    return "; ".join(changed) or "new tunables or captured values"


def last_call_guard(args, static: tuple = ()):
    """A cheap check that later positional `args` have this call's signature, or None if unavailable.
    Floats are checked by type (runtime values), except at the `static` positions: by value.

    Tensor metadata is compared by torch's C++ TensorGuards (what torch.compile's guards use):
    about 0.2 us instead of building and hashing a signature key. Static values and the 16-byte
    alignment a kernel was compiled to assume are checked in Python; lists, tuples and functions
    by their key (`tilefn.trace.arguments.arg_key`: tensors inside them by metadata). The check is
    generated as one function of straight-line tests (`tilefn.guard_source`: no loops or generators on
    the fast path).
    """
    positions = tensor_positions(args)
    tensors = [args[i] for i in positions]
    check = tensor_guards_check(tensors, [list(t.shape) for t in tensors], [list(t.stride()) for t in tensors])
    if check is None:
        return None
    namespace = {}
    lines = argument_lines(args, static, check, namespace)
    lines += pointer_lines(args, positions, exact=False)
    return compile_guard(lines, namespace, "<tilefn call guard>")


def checked_too(guard, check, args, static: tuple = ()):
    """A fast path's guard (None: `last_call_guard`'s) that also asks `check(args)` (None: nothing more)."""
    if check is None:
        return guard
    guard = guard if guard is not None else last_call_guard(args, static)
    if guard is None:
        return lambda _: False  # (no cheap signature check: every call takes the keyed path)
    return also_checking(guard, check)


class SignatureCache:
    """One value per signature key, made once; `fast` runs the latest remembered call's value behind its
    guard (`last`: that guard and value).

    `get(key)` is the store's own dict lookup (no Python frame). `fast` is read by callers' fast
    paths and written only by `remember`; `set` and `discard` clear it, so a replaced or dropped
    value never runs through a stale guard.
    """

    def __init__(self):
        self._values: dict = {}
        self._lock = threading.RLock()
        self.last: tuple | None = None
        self.fast: Callable | None = None
        self.get = self._values.get

    def get_or_make(self, key, make: Callable[[], object]):
        """The value for `key`, made by `make()` if there is none (once: under the cache's lock)."""
        value = self._values.get(key)
        if value is None:
            with self._lock:
                value = self._values.get(key)
                if value is None:
                    value = make()
                    self._values[key] = value
        return value

    def set(self, key, value) -> None:
        """Store `value` for `key`, replacing what was there."""
        with self._lock:
            self._values[key] = value
            self.last = self.fast = None

    def discard(self, key) -> None:
        """Forget `key`'s value (nothing happens if there is none)."""
        with self._lock:
            self._values.pop(key, None)
            self.last = self.fast = None

    def remember(self, args, value, also: Callable[[], bool] | None = None, static: tuple = (), guard=None) -> None:
        """Make `value` the fast path's answer for positional calls with `args`' signature (and, when
        given, while `also()` holds: captured values unchanged); `static`: positions compared by value;
        `guard`: the check to use instead of `last_call_guard(args, static)` (a dynamic kernel's)."""
        guard = guard if guard is not None else last_call_guard(args, static)
        if guard is not None and also is not None:
            guard = also_checking(guard, lambda _args: also())
        self.last = (guard, value) if guard is not None else None
        self.fast = fast_path(guard, value) if guard is not None else None

    def keys(self) -> list:
        """The signature keys stored so far, oldest first."""
        with self._lock:
            return list(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key) -> bool:
        return key in self._values


def dynamic_signature_key(args) -> tuple:
    """What a static_shapes=False Program is specialised on (before its guards): per tensor its dtype, rank,
    device, alignment, layout class and divisibility (`tilefn.trace.dynamic.dynamic_tensor_key`), never its
    sizes; every other argument as `signature_key` keys it."""
    return tuple(dynamic_tensor_key(x) if isinstance(x, torch.Tensor) and x.layout is torch.strided
                 else signature_key((x,), {}) for x in args)

