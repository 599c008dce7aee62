"""The jit transform: signature key -> traced Program (and, once lowered, its executable)."""
from __future__ import annotations

import functools
import inspect
import sys
import threading

import torch

from .config import Config
from .errors import ArgumentError, TilefnError
from .trace.ir import Program
from .trace.tracer import STATIC_ARG_TYPES, trace


def signature_key(args, kwargs) -> tuple:
    """What a traced program is specialised on: tensor metadata and static argument values."""
    key = []
    for x in args if not kwargs else (*args, *sorted(kwargs.items())):
        if isinstance(x, tuple) and kwargs:  # a (name, value) pair from kwargs
            key.append(x[0])
            x = x[1]
        if isinstance(x, torch.Tensor):
            key += (x.dtype, x.shape, x.stride(), x.device, x.data_ptr() % 16 == 0)
        elif isinstance(x, STATIC_ARG_TYPES):
            key += (type(x), x)
        else:
            raise ArgumentError(f"an argument is a {type(x).__name__}; kernels take tensors, Python "
                                "numbers, strings, dtypes and devices", source=None)
    return tuple(key)


def last_call_guard(args):
    """A cheap check that later positional `args` have this call's signature, or None if unavailable.

    Tensor metadata is compared by torch's C++ TensorGuards (what torch.compile's guards use):
    about 0.2 us instead of building and hashing a signature key. Static values and the 16-byte
    alignment a kernel was compiled to assume are checked in Python.
    """
    try:
        from torch._C._dynamo.guards import TensorGuards
    except ImportError:
        return None
    positions = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
    tensors = [args[i] for i in positions]
    statics = [(i, type(a), a) for i, a in enumerate(args) if not isinstance(a, torch.Tensor)]
    aligned = [i for i in positions if args[i].data_ptr() % 16 == 0]
    try:
        guards = TensorGuards(*tensors, dynamic_dims_sizes=[list(t.shape) for t in tensors],
                              dynamic_dims_strides=[list(t.stride()) for t in tensors])
    except Exception:  # a private API: if it changes, the signature key alone still works
        return None
    count, check = len(args), guards.check

    def matches(call_args) -> bool:
        try:
            if len(call_args) != count or any(type(call_args[i]) is not t or call_args[i] != v for i, t, v in statics):
                return False
            if not check(*(call_args if not statics else [call_args[i] for i in positions])):
                return False
            return not any(call_args[i].data_ptr() & 15 for i in aligned)
        except Exception:
            return False

    return matches


class JitFunction:
    """A kernel function compiled once per argument signature."""

    def __init__(self, fn, config: Config | None = None, print_output_code: bool = False):
        self.fn = fn
        self.config = config
        self.print_output_code = print_output_code
        self._programs: dict[tuple, Program] = {}
        self._executables: dict[tuple, object] = {}
        self._last = None  # (guard, executable) of the most recent positional-only signature
        self._lock = threading.Lock()
        functools.update_wrapper(self, fn)

    def trace_and_bind(self, args, kwargs, tunables=None) -> tuple[Program, list]:
        """The Program for these arguments and `register_tunable` values (default: this jit's config's),
        traced once per (signature, tunables), and its tensor operands."""
        if tunables is None:
            tunables = self.config.tunables if self.config is not None else ()
        try:
            key = signature_key(args, kwargs)
        except ArgumentError:
            key = None  # tracing names the offending argument
        if tunables and key is not None:
            key = (key, tunables)
        program = self._programs.get(key) if key is not None else None
        if program is None:
            try:
                program = trace(self.fn, args, kwargs, tunables)
            except TilefnError as exc:
                raise exc.with_traceback(None) from None
            with self._lock:
                self._programs[key] = program
        values = self._bind(args, kwargs).arguments.values() if kwargs else args
        return program, [v for v in values if isinstance(v, torch.Tensor)]

    def _bind(self, args, kwargs) -> inspect.BoundArguments:
        return inspect.signature(self.fn).bind(*args, **kwargs)

    def lower(self, *args, config: Config | None = None, **kwargs):
        """The Program for these arguments, traced with `config`'s tunables, lowered to Triton under
        `config` (default: this jit's config, else the heuristics)."""
        from .lower.lowered import lower

        config = config if config is not None else self.config
        program, _ = self.trace_and_bind(args, kwargs, config.tunables if config is not None else ())
        lowered = lower(program, config)
        if self.print_output_code:
            print(lowered.source, file=sys.stderr)
        return lowered

    def __call__(self, *args, **kwargs):
        last = self._last
        if last is not None and not kwargs and last[0](args):
            return last[1](*args)
        try:
            key = signature_key(args, kwargs)
        except ArgumentError:
            self.trace_and_bind(args, kwargs)  # raises, naming the offending argument
            raise
        executable = self._executables.get(key)
        if executable is None:
            executable = self._compile(key, args, kwargs)
        if kwargs:
            bound = self._bind(args, kwargs)
            return executable(*bound.args, **{f"_{k}" if not isinstance(v, torch.Tensor) else k: v
                                              for k, v in bound.kwargs.items()})
        guard = last_call_guard(args)
        self._last = (guard, executable) if guard is not None else None
        return executable(*args)

    def _compile(self, key, args, kwargs):
        executable = self.lower(*args, **kwargs).compile()
        with self._lock:
            self._executables[key] = executable
        return executable


def as_traceable(fn) -> JitFunction:
    return fn if isinstance(fn, JitFunction) else JitFunction(fn)


def jit(fn=None, *, config: Config | None = None, print_output_code: bool = False):
    """`@tfn.jit` / `@tfn.jit(config=...)`: trace, lower and compile once per argument signature."""
    if fn is None:
        return lambda f: JitFunction(f, config=config, print_output_code=print_output_code)
    return JitFunction(fn, config=config, print_output_code=print_output_code)


def make_ir(fn):
    """`make_ir(kernel)(*args)` returns the traced Program."""
    kernel = as_traceable(fn)
    return lambda *args, **kwargs: kernel.trace_and_bind(args, kwargs)[0]
