"""The fast path's check of a static_shapes=False kernel, generated as Python source per executable.

A later call runs the remembered executable when it has the same dynamic signature (per tensor: dtype,
rank, device and grad state by torch's C++ TensorGuards with every size and stride left dynamic, then
layout class, the 16-divisibility facts, alignment, int32 fit, expanded axes) and its sizes satisfy the
same guard set first (`TracedFunction.guard_check`), spelled out as one function of straight-line checks
(the guards as their own Python expressions of the sizes). Arguments with structure (lists, functions)
take the general check: the dynamic signature key compared whole.
"""
from __future__ import annotations

import torch

from .guard_source import argument_lines, compile_guard, pointer_lines, tensor_guards_check, tensor_positions
from .signature_cache import dynamic_signature_key
from .trace.arguments import RUNTIME_ARG_TYPES, STATIC_ARG_TYPES
from .trace.sizes import SizeVar
from .trace.dynamic import (INT32_SPAN, dynamic_tensor_key, expanded_axes, fits_int32, layout_class,
                            runtime_stride_dims, symbols_of)

def _general(args, same_program, static):
    key, count = dynamic_signature_key(args), len(args)
    values = [(i, type(args[i]), args[i]) for i in static]

    def matches(call_args) -> bool:
        try:
            return len(call_args) == count and dynamic_signature_key(call_args) == key and same_program(call_args) \
                and all(type(call_args[i]) is t and call_args[i] == v for i, t, v in values)
        except Exception:
            return False

    return matches


def _tensor_lines(i: int, t: torch.Tensor, sizes: list[str], strides_checked: bool, pinned) -> list[str]:
    """The checks of tensor argument `i` (its sizes already read into the locals `sizes`; `strides_checked`:
    TensorGuards compares its strides, so a contiguous one needs no test of its own; `pinned`: the size
    names TensorGuards compares, whose divisibility and int32 facts are then constants)."""
    a = f"a{i}"
    layout = layout_class(t)
    tests = {"contiguous": [] if strides_checked else [f"{a}.is_contiguous()"],
             "unit": [f"not {a}.is_contiguous()", f"{a}.stride(-1) == 1"],
             "strided": [f"not {a}.is_contiguous()", f"{a}.stride(-1) != 1"]}[layout]
    divisible, strides_divisible = dynamic_tensor_key(t)[5]
    tests += [f"({sizes[d]} & 15 == 0) is {flag}" for d, flag in enumerate(divisible, start=1) if sizes[d] not in pinned]
    runtime = [d for d in range(t.ndim) if layout == "strided" or (layout == "unit" and d < t.ndim - 1)]
    tests += [f"({a}.stride({d}) & 15 == 0) is {flag}" for d, flag in zip(runtime, strides_divisible)]
    if layout == "contiguous":  # (its element count from the sizes just read)
        if not set(sizes) <= pinned:
            tests.append(f"({' * '.join(sizes) or '1'} < {INT32_SPAN}) is {fits_int32(t)}")
    else:
        tests += [f"_fits({a}) is {fits_int32(t)}", f"_expanded({a}) == {expanded_axes(t)!r}"]
    return [f"if not ({' and '.join(tests)}): return False"] if tests else []


def _size_names(tensors) -> list[list[str]]:
    """Each tensor's size names (`s0`, `s1`, ...), numbered over the tensors as the dynamic trace numbers them."""
    names, count = [], 0
    for t in tensors:
        names.append([f"s{count + d}" for d in range(t.ndim)])
        count += t.ndim
    return names


def pinned_sizes(guards) -> dict:
    """Size name -> the value a guard `s == n` (held) pins it to: TensorGuards compares those sizes (and a
    contiguous tensor's strides, when all its sizes but the first are pinned) in C++."""
    return {g.expr.name: g.rhs for g in guards if _pins(g)}


def _pins(guard) -> bool:
    """Whether `guard` is `s == n` held, for a size `s` and an int `n`."""
    return isinstance(guard.expr, SizeVar) and guard.expr.kind == "size" and guard.op == "==" \
        and guard.result is True and type(guard.rhs) is int


def dynamic_guard(args, guards, same_program, static: tuple = ()):
    """A check that later flat arguments run the executable of `args` (see the module docstring); `guards`:
    the Guard set their Program was traced under; `same_program(args)`: the general form of that test;
    floats are checked by type, but at the `static` positions by value."""
    if any(not isinstance(a, (torch.Tensor, *STATIC_ARG_TYPES, *RUNTIME_ARG_TYPES)) for a in args):
        return _general(args, same_program, static)
    positions = tensor_positions(args)
    tensors = [args[i] for i in positions]
    names = _size_names(tensors)
    pinned = pinned_sizes(guards)
    fixed = [layout_class(t) == "contiguous" and all(n in pinned for n in ns[1:]) for t, ns in zip(tensors, names)]
    check = tensor_guards_check(tensors, [[pinned.get(n) for n in ns] for ns in names],
                                [list(t.stride()) if f else [None] * t.ndim for t, f in zip(tensors, fixed)])
    if check is None:
        return _general(args, same_program, static)
    namespace = {"_fits": fits_int32, "_expanded": expanded_axes, "max": max, "min": min}
    lines = argument_lines(args, static, check, namespace)
    guards = [g for g in guards if not _pins(g)]  # (TensorGuards compares the sizes those pin)
    read = {s.name for g in guards for s in symbols_of(g.expr) + symbols_of(g.rhs)}
    n_strides = 0
    for i, t, sizes, strides_fixed in zip(positions, tensors, names, fixed):
        tests = _tensor_lines(i, t, sizes, strides_fixed, pinned.keys())
        if sizes and (tests or read & set(sizes) or not set(sizes) <= pinned.keys()):  # (one read of the shape)
            lines.append(f"{', '.join(sizes)}{',' if len(sizes) == 1 else ''} = a{i}.shape")
        lines += tests
        for d in runtime_stride_dims(t):
            lines.append(f"st{n_strides} = a{i}.stride({d})")
            n_strides += 1
    lines += pointer_lines(args, positions, exact=True)
    if guards:  # (the size guards in one test)
        lines.append(f"if not ({' and '.join(f'({g.expr} {g.op} {g.rhs}) is {g.result}' for g in guards)}): return False")
    return compile_guard(lines, namespace, "<tilefn dynamic guard>")
