"""Arguments with structure: lists, tuples, dicts, dataclasses and functions, with tensors inside.

An argument is a tree. Its inner nodes are lists, tuples (named ones included), dicts and
dataclass instances, whose children are their items (a dataclass's: its fields), and Python
functions (lambdas, nested functions), whose children are what they capture: closure cells,
defaults and keyword defaults. Its leaves are tensors, Python floats (runtime values:
`tilefn.trace.scalars`), static values (ints, bools, strings, None, dtypes, devices) and, inside
functions, any other object (by identity, as `captures.py` says).

- `arg_key(value, where)`: what a Program is specialised on: the tree's shape and static values,
  its tensors' metadata, its floats' type (not their values, unless `static_floats`: a parameter
  named in `static_argnames`), and for a function the identity of its code, its captured values and
  the globals it reads (by the rules of `captures.py`). So a new lambda object with the same code and
  captured values is the same signature; a different captured value is another.
- `tensor_leaves(value, name, floats=False)`: (path, name hint, leaf) of each tensor (and float) in
  the tree. A Program takes each as an input of its own, read from the argument at every call
  through its path (`read`; `path_source` spells the same in generated code): a lambda's captured
  tensor is the tensor the lambda of *this* call holds.
- `replace(value, {path: new})`: the tree with those leaves replaced (functions rebuilt with new
  cells and defaults), which the tracer calls with proxies in place of the tensors.
- `functions_in(value)`: the functions in the tree, whose global reads the tracer watches as it
  watches the kernel's own.
"""
from __future__ import annotations

import dataclasses
import re
import types

import torch

from ..errors import ArgumentError
from .captures import Identity, captures_of, snapshot
from .types import tensor_problem

STATIC_ARG_TYPES = (bool, int, str, type(None), torch.dtype, torch.device)
RUNTIME_ARG_TYPES = (float,)  # values the kernel takes at every call (keyed by type; `tilefn.trace.scalars`)
ACCEPTED = ("tensors, Python numbers, strings, None, dtypes, devices, lists, tuples, dicts and "
            "dataclasses of them, and functions")


def _children(value, seen: frozenset) -> list:
    """(step, child, hint suffix) of an inner node; [] for a leaf (or a function already on the path)."""
    if isinstance(value, (list, tuple)):
        return [(("item", i), v, str(i)) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return [(("key", k), v, str(k)) for k, v in value.items()]
    if _is_dataclass(value):
        return [(("attr", f.name), getattr(value, f.name), f.name) for f in dataclasses.fields(value) if f.init]
    if isinstance(value, types.FunctionType) and id(value) not in seen:
        code, out = value.__code__, []
        for i, (name, cell) in enumerate(zip(code.co_freevars, value.__closure__ or ())):
            try:
                out.append((("cell", i), cell.cell_contents, name))
            except ValueError:  # an empty cell: its key says so
                pass
        defaults = value.__defaults__ or ()
        positional = code.co_varnames[:code.co_argcount]
        names = positional[len(positional) - len(defaults):]
        out += [(("default", i), d, names[i]) for i, d in enumerate(defaults)]
        out += [(("kwdefault", k), d, k) for k, d in (value.__kwdefaults__ or {}).items()]
        return out
    return []


def _is_dataclass(value) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _is_node(value) -> bool:
    return isinstance(value, (list, tuple, dict, types.FunctionType)) or _is_dataclass(value)


def arg_key(value, where: str, strict: bool = True, seen: frozenset = frozenset(), at: str = "",
            static_floats: bool = False):
    """A hashable key of the argument `value` (see the module docstring). `where` names it in an
    ArgumentError for a value a kernel cannot take (strict: not inside a function's captures);
    `static_floats` keys its floats by value."""
    if isinstance(value, torch.Tensor):
        problem = tensor_problem(value)
        if problem is not None:
            raise ArgumentError(f"{where} {problem}" if not at else f"{where} holds at {at} a tensor that {problem}",
                                source=None)
        return snapshot(value)
    if isinstance(value, STATIC_ARG_TYPES) or static_floats and isinstance(value, RUNTIME_ARG_TYPES):
        return (type(value), value)
    if isinstance(value, RUNTIME_ARG_TYPES):
        return (type(value),)
    if isinstance(value, types.FunctionType):
        if id(value) in seen:  # a function that captures itself (recursion)
            return ("recursive", Identity(value.__code__))
        inner = seen | {id(value)}
        cells = tuple((step, arg_key(child, where, False, inner, f"{at}.{name}", static_floats))
                      for step, child, name in _children(value, seen))
        reads = tuple((c.name, snapshot(c.scope[c.name])) for c in captures_of(value) if isinstance(c.scope, dict))
        return ("function", Identity(value.__code__), cells, reads)
    if isinstance(value, (list, tuple, dict)) or _is_dataclass(value):
        if isinstance(value, dict) and strict and not all(isinstance(k, (str, int)) for k in value):
            raise ArgumentError(_refusal(where, at, "dict with keys other than strings and ints"), source=None)
        items = tuple((step, arg_key(child, where, strict, seen,
                                     f"{at}.{step[1]}" if step[0] == "attr" else f"{at}[{step[1]!r}]", static_floats))
                      for step, child, _ in _children(value, seen))
        return (type(value), items)
    if not strict or callable(value):  # builtins, torch functions, classes; objects a function captures
        return snapshot(value)
    raise ArgumentError(_refusal(where, at, type(value).__name__), source=None)


def _refusal(where: str, at: str, what: str) -> str:
    return f"{where} {'is' if not at else f'holds at {at}'} a {what}; kernels take {ACCEPTED}"


def tensor_leaves(value, name: str, floats: bool = False, seen: frozenset = frozenset()) -> list:
    """(path, name hint, leaf) of every tensor (with `floats`, and every float) in the tree, depth first."""
    leaf_types = (torch.Tensor, *RUNTIME_ARG_TYPES) if floats else torch.Tensor
    if isinstance(value, leaf_types):
        return [((), name, value)]
    out = []
    inner = seen | {id(value)} if isinstance(value, types.FunctionType) else seen
    for step, child, suffix in _children(value, seen):
        if isinstance(child, leaf_types) or _is_node(child):
            hint = re.sub(r"\W", "_", suffix if step[0] in ("cell", "default", "kwdefault") else f"{name}_{suffix}")
            out += [((step, *path), h, t) for path, h, t in tensor_leaves(child, hint, floats, inner)]
    return out


def functions_in(value, seen: frozenset = frozenset()) -> list:
    """The Python functions in the tree (each once)."""
    out = []
    if isinstance(value, types.FunctionType):
        if id(value) in seen:
            return []
        out.append(value)
        seen = seen | {id(value)}
    for _, child, _ in _children(value, seen):
        for fn in functions_in(child, seen):
            if not any(fn is f for f in out):
                out.append(fn)
    return out


def read(value, path: tuple):
    """The leaf at `path` of the tree `value`."""
    for kind, at in path:
        if kind in ("item", "key"):
            value = value[at]
        elif kind == "attr":
            value = getattr(value, at)
        elif kind == "cell":
            value = value.__closure__[at].cell_contents
        elif kind == "default":
            value = value.__defaults__[at]
        else:
            value = value.__kwdefaults__[at]
    return value


def path_source(expr: str, path: tuple) -> str:
    """Python source reading the leaf at `path` of the value `expr` names (`read`, spelled out)."""
    for kind, at in path:
        if kind in ("item", "key"):
            expr = f"{expr}[{at!r}]"
        elif kind == "attr":
            expr = f"{expr}.{at}"
        elif kind == "cell":
            expr = f"{expr}.__closure__[{at}].cell_contents"
        elif kind == "default":
            expr = f"{expr}.__defaults__[{at}]"
        else:
            expr = f"{expr}.__kwdefaults__[{at!r}]"
    return expr


def replace(value, new: dict, path: tuple = ()):
    """The tree with the leaf at each path of `new` (paths from the tree's root) replaced."""
    if path in new:
        return new[path]
    below = {p: v for p, v in new.items() if p[:len(path)] == path and len(p) > len(path)}
    if not below:
        return value
    changed = {}
    for step, child, _ in _children(value, frozenset()):
        out = replace(child, below, (*path, step))
        if out is not child:
            changed[step] = out
    return _rebuild(value, changed) if changed else value


def _rebuild(value, changed: dict):
    if isinstance(value, (list, tuple)):
        items = [changed.get(("item", i), v) for i, v in enumerate(value)]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, dict):
        return {k: changed.get(("key", k), v) for k, v in value.items()}
    if _is_dataclass(value):
        return dataclasses.replace(value, **{name: v for (_, name), v in changed.items()})
    closure = tuple(types.CellType(changed[("cell", i)]) if ("cell", i) in changed else cell
                    for i, cell in enumerate(value.__closure__ or ())) or None
    defaults = tuple(changed.get(("default", i), d) for i, d in enumerate(value.__defaults__ or ())) or None
    fn = types.FunctionType(value.__code__, value.__globals__, value.__name__, defaults, closure)
    fn.__kwdefaults__ = {k: changed.get(("kwdefault", k), d) for k, d in (value.__kwdefaults__ or {}).items()} or None
    fn.__qualname__ = value.__qualname__
    return fn
