"""A kernel's fast path: its latest call's guard and executable as one generated function of the arguments.

`fast_path(guard, executable)(args)` is `executable(*args)` when `guard(args)` holds, else `MISS`. Where
both are generated Python (a guard from `tilefn.guard_source.compile_guard`, a host function from
`tilefn.lower.host_function`), they are inlined into one function: the guard's lines in a `try` (a
failed line or an exception is a miss), then the host function's body on the same locals. One Python
frame and one read of the arguments per call instead of three frames, and the sizes a dynamic guard read
(`s0, s1 = a0.shape`, named as the trace names them) are not read again by the host code. A host function's own errors
(an overlap refused, a launch that fails) propagate as they would from the executable.
"""
from __future__ import annotations

import re

MISS = object()  # what a fast path returns when the call is not the one it was made for


def fast_path(guard, executable):
    """One function of the call's flat arguments: `executable(*args)` if `guard(args)`, else MISS."""
    lines, host = getattr(guard, "guard_lines", None), getattr(executable, "host_source", None)
    fused = _fused(lines, guard, host, executable) if lines is not None and host is not None else None
    if fused is not None:
        return fused

    def composed(args):
        return executable(*args) if guard(args) else MISS

    return composed


def _fused(lines, guard, host: str, executable):
    """The inlined form, or None where it cannot be made safely (a name of one shadows the other's)."""
    code = executable.__code__
    params = code.co_varnames[:code.co_argcount]
    if not params or lines[0] != f"if len(args) != {len(params)}: return False":
        return None  # (the guard binds each of the arguments to `a{i}`; the host function takes them all)
    checks = [line[:-len("return False")] + "return _MISS" if line.endswith("return False") else line for line in lines]
    source = ["def fast(args):", "    try:", *(f"        {line}" for line in checks),
              "    except Exception:", "        return _MISS"]
    source.append(f"    {', '.join(params)}, = {', '.join(f'a{i}' for i in range(len(params)))},")
    body = host.splitlines()[1:]  # the host function's body, after its `def` line
    bound = set(guard.__code__.co_varnames)
    reads = {f"    {line}" for line in getattr(executable, "size_reads", ()) if _assigned(line) <= bound}
    body = _addresses_bound(body, params, bound, set(code.co_varnames))
    source += [line for line in body if line not in reads]  # (sizes the guard read, under the same names)
    guard_names, host_names = guard.__globals__, executable.__globals__
    shared = (guard_names.keys() & host_names.keys()) - {"__builtins__"}
    if any(guard_names[name] is not host_names[name] for name in shared):
        return None
    namespace = {**host_names, **guard_names, "_MISS": MISS}
    exec(compile("\n".join(source) + "\n", f"<tilefn fast path {code.co_name}>", "exec"), namespace)
    fast = namespace["fast"]
    if set(fast.__code__.co_varnames) & (guard_names.keys() - {"args"}):
        return None  # a host local named like a guard's global would be unbound when the guard reads it
    return fast


def _addresses_bound(body: list[str], params, bound: set, host_locals: set) -> list[str]:
    """`body` with each `param.data_ptr()` read as the address `_p{i}` the guard bound for that argument
    (where the host code neither rebinds the parameter nor has a local of that name)."""
    assigned = set().union(*(_assigned(line) for line in body if " = " in line and not line.lstrip().startswith("if ")))
    for i, param in enumerate(params):
        name = f"_p{i}"
        if name in bound and name not in host_locals and param not in assigned:
            read = re.compile(rf"(?<![\w.]){re.escape(param)}\.data_ptr\(\)")
            body = [read.sub(name, line) for line in body]
    return body


def _assigned(line: str) -> set:
    """The names a `name, name = ...` line assigns."""
    return {name.strip() for name in line.split("=")[0].split(",") if name.strip()}
