"""A call's arguments as one flat tuple: every parameter of the kernel, in order, defaults applied.

Everything after the call site (signature keys, the fast path's guard, tracing, the launcher, the
interpreter) sees this one form, so `k(x, eps=1e-5)`, `k(x, 1e-5)` and `k(x)` (with that default)
are one signature, keyword-only parameters are plain positions, and a parameter without a default
may follow one with a default. A tuple of every parameter's value is flat already (keyword-only
ones included: internal callers pass flat tuples around as positional calls). `*args` and
`**kwargs` parameters are refused: name each parameter.
"""
from __future__ import annotations

import inspect

from ..errors import ArgumentError
from .naming import kernel_name

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class Binder:
    """`flat(args, kwargs)` for one kernel function, and `call_args(flat)` to call it again."""

    def __init__(self, fn):
        self.name = kernel_name(fn)
        self.signature = inspect.signature(fn)
        params = list(self.signature.parameters.values())
        self.variadic = [p.name for p in params if p.kind in _VARIADIC]
        self.names = tuple(p.name for p in params)
        self.arity = len(params) if not self.variadic else -1  # -1: never already flat
        self.keyword_only = tuple(p.name for p in params if p.kind not in _POSITIONAL)
        self.positional = len(params) - len(self.keyword_only)
        self._fill = tuple(p.default for p in params)  # defaults, for a call that leaves out a tail
        self._fill_from = len(params)  # the first position from which every parameter has a default
        while self._fill_from > 0 and params[self._fill_from - 1].default is not inspect.Parameter.empty:
            self._fill_from -= 1

    def flat(self, args: tuple, kwargs: dict) -> tuple:
        """Every parameter's value for this call, in the signature's order (an ArgumentError naming
        the kernel if the call does not fit its signature)."""
        if self.variadic:
            raise ArgumentError(f"{self.name}() has a variadic parameter ({', '.join(self.variadic)}); tilefn "
                                "kernels need named parameters: replace *args/**kwargs by a tuple parameter")
        if len(args) == self.arity and not kwargs:
            return args
        if not kwargs and self._fill_from <= len(args) <= self.positional:
            return tuple(args) + self._fill[len(args):]
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ArgumentError(f"{self.name}(): {exc}") from None
        bound.apply_defaults()
        return tuple(bound.arguments.values())

    def call_args(self, flat: tuple) -> tuple[tuple, dict]:
        """(args, kwargs) that call the function with these parameter values (keyword-only ones by name)."""
        return tuple(flat[:self.positional]), dict(zip(self.keyword_only, flat[self.positional:]))
