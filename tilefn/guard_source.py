"""The shared pieces of a generated fast-path guard: one Python function of straight-line tests per call.

Both guards (`tilefn.signature_cache.last_call_guard`, a static kernel's; `tilefn.dynamic_guard`, a
static_shapes=False kernel's) start the same way: the argument count, each argument bound to a local
`a{i}`, then per non-tensor argument a test (a static value by class and value, a runtime value by class,
a structure by its `arg_key`), then all tensors' metadata by torch's C++ TensorGuards. They differ in the
tensor facts that follow, which each appends to the lines this module starts.
"""
from __future__ import annotations

import torch

from .trace.arguments import RUNTIME_ARG_TYPES, STATIC_ARG_TYPES, arg_key

try:
    from torch._C._dynamo.guards import TensorGuards
except ImportError:  # a private API: without it callers fall back to their general checks
    TensorGuards = None


def tensor_positions(args) -> list[int]:
    """The positions of `args` that hold tensors."""
    return [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]


def tensor_guards_check(tensors, sizes, strides):
    """TensorGuards' `check` for `tensors` (`sizes`, `strides`: per tensor its dims, None where dynamic),
    or None where the private API is missing or refuses them."""
    if TensorGuards is None:
        return None
    try:
        return TensorGuards(*tensors, dynamic_dims_sizes=sizes, dynamic_dims_strides=strides).check
    except Exception:  # a private API: if it changes, the caller's general check still works
        return None


def argument_lines(args, static, tensors_check, namespace: dict) -> list[str]:
    """The guard's first lines for a call like `args`: its length, `a{i} = args[i]` for each argument, a
    test per non-tensor argument (`static`: positions compared by value, as static types always are), and
    `tensors_check` over all tensors; the names the lines use are put in `namespace`."""
    namespace["_check"], namespace["_arg_key"] = tensors_check, arg_key
    lines = [f"if len(args) != {len(args)}: return False"]
    lines += [f"a{i} = args[{i}]" for i in range(len(args))]
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            continue
        if isinstance(a, STATIC_ARG_TYPES) or i in static:
            namespace[f"_t{i}"], namespace[f"_v{i}"] = type(a), a
            lines.append(f"if a{i}.__class__ is not _t{i} or a{i} != _v{i}: return False")
        elif isinstance(a, RUNTIME_ARG_TYPES):
            namespace[f"_t{i}"] = type(a)
            lines.append(f"if a{i}.__class__ is not _t{i}: return False")
        else:
            namespace[f"_k{i}"] = arg_key(a, "an argument")
            lines.append(f"if _arg_key(a{i}, 'an argument') != _k{i}: return False")
    lines.append(f"if not _check({', '.join(f'a{i}' for i in tensor_positions(args))}): return False")
    return lines


def pointer_lines(args, positions, exact: bool) -> list[str]:
    """Lines binding `_p{i}` to the address of each tensor `a{i}` whose 16-byte alignment the kernel assumed
    (`exact`: also of each one it did not, which must stay unaligned) and testing it; a fast path passes
    the bound addresses to the launch (`tilefn.fast_path`), so each is read once per call."""
    aligned = [i for i in positions if args[i].data_ptr() % 16 == 0]
    unaligned = [i for i in positions if args[i].data_ptr() % 16] if exact else []
    lines = [f"_p{i} = a{i}.data_ptr()" for i in sorted(aligned + unaligned)]
    if aligned:  # (the alignments in one test)
        lines.append(f"if ({' | '.join(f'_p{i}' for i in aligned)}) & 15: return False")
    return lines + [f"if not _p{i} & 15: return False" for i in unaligned]


def compile_guard(lines: list[str], namespace: dict, filename: str):
    """`lines` as the body of `guard(args)`: True when every line passes, False on a failed line or any
    exception (an argument of another kind). The function keeps its lines as `guard_lines` (and its
    namespace is its `__globals__`), so a fast path can inline them (`tilefn.fast_path`)."""
    source = "def guard(args):\n    try:\n" + "".join(f"        {line}\n" for line in lines) + \
        "        return True\n    except Exception:\n        return False\n"
    exec(compile(source, filename, "exec"), namespace)
    guard = namespace["guard"]
    guard.guard_lines = tuple(lines)
    return guard


def also_checking(guard, check):
    """`guard` that also asks `check(args)` (None: nothing more): one generated function where `guard` is."""
    if check is None:
        return guard
    lines = getattr(guard, "guard_lines", None)
    if lines is None:
        return lambda args: guard(args) and check(args)
    name = f"_also{len(lines)}"
    return compile_guard([*lines, f"if not {name}(args): return False"], {**guard.__globals__, name: check},
                         guard.__code__.co_filename)
