"""Names of torch functions as the user spelled them, and of kernel callables in generated code."""
from __future__ import annotations

import functools
import keyword
import operator
import re

_OPERATOR_TEXT = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
                  operator.floordiv: "//", operator.mod: "%", operator.pow: "**", operator.eq: "==",
                  operator.ne: "!=", operator.lt: "<", operator.le: "<=", operator.gt: ">", operator.ge: ">="}


def op_name(func) -> str:
    """`torch.add` -> "add"; a property's getter (Tensor.shape) -> the property's name."""
    name = getattr(func, "__name__", None) or str(func)
    if name == "__get__":  # a property such as Tensor.shape, reached through its getter
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    return name


def operator_text(fn, args: list) -> str | None:
    """Python's spelling of an operator call on rendered operands (`(1.0 / eps)`), or None for another function."""
    if fn in _OPERATOR_TEXT and len(args) == 2:
        return f"({args[0]} {_OPERATOR_TEXT[fn]} {args[1]})"
    if fn in (operator.neg, operator.abs) and len(args) == 1:
        return f"(-{args[0]})" if fn is operator.neg else f"abs({args[0]})"
    return None


def kernel_function(fn):
    """The Python function a kernel callable runs: `fn`, a partial's `func`, a method's or a
    callable object's `__call__` function."""
    while True:
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif hasattr(fn, "__func__"):  # a bound method
            fn = fn.__func__
        elif not hasattr(fn, "__code__") and callable(fn) and hasattr(type(fn), "__call__"):
            call = type(fn).__call__
            if call is fn or not hasattr(call, "__code__"):
                return fn
            fn = call
        else:
            return fn


def kernel_name(fn) -> str:
    """An identifier naming a kernel callable in generated code and messages ("<lambda>" -> "lambda")."""
    inner = kernel_function(fn)
    name = getattr(inner, "__name__", None) or type(fn).__name__
    if name == "__call__":
        name = type(fn).__name__
    name = re.sub(r"\W", "_", name) or "kernel"
    return name if not name[0].isdigit() and not keyword.iskeyword(name) else f"k_{name}"
