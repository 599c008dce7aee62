"""How an example file is driven: each `check*` (or `test`) function whose parameters are sizes runs on
two small size sets (one that block sizes divide, one they don't); a file without one runs `main()`,
at the sizes it chooses (GPU sizes, often too slow for Triton's CPU interpreter).

Of a check's int parameters the last three are sizes (ALIGNED / RAGGED), earlier ones batch-like
counts (BATCH); a `tuple[int, ...]` parameter is a 2-d shape, a float 0.25, a bool False.
Parameters with defaults keep them, but a `device` parameter gets the shim's DEVICE. A check with a `str`
parameter (mamba2_chunk_scan's init patterns) runs as `main()` calls it, each int capped at MAIN_CAP (a
power of two keeps the sizes' divisibility); a check with any other parameter is not driven. A file
with no such function but a module-level object with a `test()` method (examples/linear's harnesses)
runs that; else `main()`.
"""
from __future__ import annotations

import ast
import functools
import inspect
import textwrap

from .testing_shim import DEVICE

SIZE_SETS = (("aligned", 32, 2), ("ragged", 40, 3))  # (label, size, batch)
FLOAT_VALUE = 0.25
MAIN_CAP = 32


def _kind(annotation) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    return text.replace(" ", "")


def size_args(fn, size: int, batch: int) -> tuple | None:
    """Arguments for check function `fn` at this size, or None when a parameter isn't a size."""
    params = [p for p in inspect.signature(fn).parameters.values() if p.default is inspect.Parameter.empty]
    kinds = [_kind(p.annotation) for p in params]
    if not params or any(k not in ("int", "float", "bool") and not k.startswith("tuple[int") for k in kinds):
        return None
    n_ints = kinds.count("int")
    args, ints_seen = [], 0
    for kind in kinds:
        if kind == "int":
            args.append(batch if ints_seen < n_ints - 3 else size)
            ints_seen += 1
        elif kind == "float":
            args.append(FLOAT_VALUE)
        elif kind == "bool":
            args.append(False)
        else:
            args.append((size, size))
    return tuple(args)


def check_functions(module) -> list:
    """The module's own functions named check* or test, in file order."""
    fns = [v for k, v in vars(module).items()
           if (k.startswith("check") or k == "test") and inspect.isfunction(v) and v.__module__ == module.__name__]
    return sorted(fns, key=lambda f: f.__code__.co_firstlineno)


def main_calls(module, fn) -> list[tuple]:
    """The calls `module.main()` makes to `fn` with literal arguments only, ints capped at MAIN_CAP (distinct,
    in call order); none when main() cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(module.main)))
    except (AttributeError, OSError, TypeError, SyntaxError):
        return []
    calls = []
    for call in ast.walk(tree):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == fn.__name__
                and not call.keywords and all(isinstance(a, ast.Constant) for a in call.args)):
            calls.append(tuple(min(a.value, MAIN_CAP) if type(a.value) is int else a.value for a in call.args))
    return list(dict.fromkeys(calls))


def harness_tests(module) -> list:
    """Module-level objects (not functions or classes) whose class defines a `test()` method, in name order."""
    return [(name, value.test) for name, value in sorted(vars(module).items())
            if not inspect.isroutine(value) and not inspect.isclass(value) and not inspect.ismodule(value)
            and callable(getattr(type(value), "test", None))]


def example_runs(module, label: str) -> list[tuple[str, object]]:
    """(name, zero-argument callable) for each run of this example; `label` prefixes the names."""
    runs = []
    for fn in check_functions(module):
        takes_str = any(_kind(p.annotation) == "str" for p in inspect.signature(fn).parameters.values())
        sized = main_calls(module, fn) if takes_str else (size_args(fn, size, batch) for _, size, batch in SIZE_SETS)
        device = {"device": DEVICE} if "device" in inspect.signature(fn).parameters else {}
        for args in sized:
            if args is not None:
                runs.append((f"{label}::{fn.__name__}{args!r}".replace(",)", ")"), functools.partial(fn, *args, **device)))
    if not runs:
        runs = [(f"{label}::{name}.test()", test) for name, test in harness_tests(module)]
    if not runs and callable(getattr(module, "main", None)):
        runs.append((f"{label}::main()", module.main))
    return runs
