"""A kernel function traced once per argument signature (and `register_tunable` values) into a Program."""
from __future__ import annotations

import functools
import inspect

import torch

from .trace.captures import capture_key, captures_of
from .config import Config
from .errors import ArgumentError, TilefnError
from .signature_cache import SignatureCache, signature_key
from .trace.ir import Program
from .trace.tracer import trace


class TracedFunction:
    """`fn` and its Programs, one per (signature, tunables); what `tfn.interpret` and `make_ir` need."""

    def __init__(self, fn, config: Config | None = None, dot_precision: str = "ieee"):
        self.fn = fn
        self.config = config
        self.dot_precision = dot_precision  # how float32 dots multiply unless a dot says ("ieee", "tf32", "tf32x3")
        self._programs = SignatureCache()
        self.captures = captures_of(fn)  # the globals and closure cells the Programs fold in
        functools.update_wrapper(self, fn)

    def key(self, args, kwargs, tunables=()) -> tuple:
        """What a Program (and its executable) is specialised on: the signature, the tunables and
        the captured values as they are now (`tilefn.trace.captures`)."""
        key = signature_key(args, kwargs)
        if tunables:
            key = (key, tunables)
        if self.captures:
            key = (key, capture_key(self.captures))
        return key

    def captures_unchanged(self):
        """A check, for a fast path, that the captured values still are what they are now (None: nothing captured)."""
        if not self.captures:
            return None
        captures, now = self.captures, capture_key(self.captures)
        return lambda: capture_key(captures) == now

    def trace_and_bind(self, args, kwargs, tunables=None) -> tuple[Program, list]:
        """The Program for these arguments and `register_tunable` values (default: this function's
        config's), traced once per (signature, tunables), and its tensor operands."""
        if tunables is None:
            tunables = self.config.tunables if self.config is not None else ()
        try:
            key = self.key(args, kwargs, tunables)
        except ArgumentError:
            key = None  # tracing names the offending argument
        make = functools.partial(self._trace, args, kwargs, tunables)
        program = make() if key is None else self._programs.get_or_make(key, make)
        values = self._bind(args, kwargs).arguments.values() if kwargs else args
        return program, [v for v in values if isinstance(v, torch.Tensor)]

    def _trace(self, args, kwargs, tunables) -> Program:
        try:
            return trace(self.fn, args, kwargs, tunables, self.dot_precision)
        except TilefnError as exc:
            raise exc.with_traceback(None) from None

    def _bind(self, args, kwargs) -> inspect.BoundArguments:
        """`fn`'s parameters bound to these arguments."""
        return inspect.signature(self.fn).bind(*args, **kwargs)


def as_traced(fn) -> TracedFunction:
    """`fn` itself if it is already traced per signature (a `tfn.jit` kernel), else a TracedFunction of it."""
    return fn if isinstance(fn, TracedFunction) else TracedFunction(fn)
