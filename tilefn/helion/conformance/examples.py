"""How an example file is driven: each `check*` (or `test`) function whose parameters are sizes runs on
two small size sets (one that block sizes divide, one they don't); a file without one runs `main()`,
at the sizes it chooses (GPU sizes, often too slow for Triton's CPU interpreter).

Of a check's int parameters the last three are sizes (ALIGNED / RAGGED), earlier ones batch-like
counts (BATCH); a `tuple[int, ...]` parameter is a 2-d shape, a float 0.25, a bool False.
Parameters with defaults keep them, but a `device` parameter gets the shim's DEVICE. A check with any
other parameter is not driven.
"""
from __future__ import annotations

import functools
import inspect

from .testing_shim import DEVICE

SIZE_SETS = (("aligned", 32, 2), ("ragged", 40, 3))  # (label, size, batch)
FLOAT_VALUE = 0.25


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


def example_runs(module, label: str) -> list[tuple[str, object]]:
    """(name, zero-argument callable) for each run of this example; `label` prefixes the names."""
    runs = []
    for fn in check_functions(module):
        for _, size, batch in SIZE_SETS:
            args = size_args(fn, size, batch)
            if args is not None:
                device = {"device": DEVICE} if "device" in inspect.signature(fn).parameters else {}
                runs.append((f"{label}::{fn.__name__}{args!r}".replace(",)", ")"), functools.partial(fn, *args, **device)))
    if not runs and callable(getattr(module, "main", None)):
        runs.append((f"{label}::main()", module.main))
    return runs
