"""Written tensors that alias: refused as PyTorch refuses them, never a result that depends on the block size.

A kernel argument the kernel stores into must not have internal overlap (a stride-0 axis of
size > 1: decided from its type, when the program is lowered) and must not partially overlap
another tensor argument (decided per call from the data pointers, by a guard the host function
runs before the launch). As in PyTorch's `get_overlap_status`, only dense tensors are compared
(for others the question is too hard and the call goes ahead), and two arguments that are the
same memory (equal start and extent: `add_(x, x)`) are allowed.
"""
from __future__ import annotations

import math

from ..errors import ArgumentError
from ..trace.dynamic import is_symbolic_type, layout_of_type
from ..trace.sizes import structure
from ..trace.ir import Program, walk_eqns
from ..trace.primitives import WRITES
from ..trace.types import HostType

INTERNAL = ("unsupported operation: more than one element of the written-to tensor refers to a single "
            "memory location. Please clone() the tensor before performing the operation.")
PARTIAL = ("unsupported operation: some elements of the input tensor and the written-to tensor refer to a "
           "single memory location. Please clone() the tensor before performing the operation.")


def written_inputs(program: Program) -> list:
    """The program inputs some store or atomic of the kernel writes, in input order."""
    if program.kernel is None:
        return []
    stored = {e.inputs[0] for e in walk_eqns(program.kernel.params["region"].eqns) if e.prim in WRITES}
    return [v for v in program.inputs if v in stored]


def _dense(t: HostType) -> bool:
    """Non-overlapping and dense: some order of the axes makes the strides contiguous (a symbolic type:
    row-major, the one dense layout it can be known to have)."""
    if is_symbolic_type(t):
        return layout_of_type(t) == "contiguous"
    dims = sorted((stride, size) for size, stride in zip(t.shape, t.strides) if size != 1)
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True


def _span_bytes(t: HostType):
    if is_symbolic_type(t):  # (dense: its elements, an expression the host function evaluates)
        return math.prod(t.shape) * t.dtype.itemsize
    if 0 in t.shape:
        return 0
    return (1 + sum((size - 1) * stride for size, stride in zip(t.shape, t.strides))) * t.dtype.itemsize


def check_internal_overlap(program: Program) -> None:
    """Refuse a written argument with a stride-0 axis of size > 1 (an expanded tensor)."""
    for var in written_inputs(program):
        if any(_expanded(size, stride) for size, stride in zip(var.type.shape, var.type.strides)):
            store = next(e for e in walk_eqns(program.kernel.params["region"].eqns)
                         if e.prim in WRITES and e.inputs[0] is var)
            raise ArgumentError(f"argument `{program.hints.get(var, '?')}` of {program.name}() is written here "
                                f"but is expanded (strides {list(var.type.strides)}): {INTERNAL}", source=store.source)


def _expanded(size, stride) -> bool:
    """A stride-0 axis of more than one element (a symbolic stride is never 0: the dynamic key keeps
    0 strides literal, and only on axes of size > 1)."""
    return isinstance(stride, int) and stride == 0 and not (isinstance(size, int) and size <= 1)


def overlap_guards(program: Program, names) -> list[str]:
    """Host-function lines that refuse, per call, a written argument partially overlapping another."""
    written = [v for v in written_inputs(program) if _dense(v.type) and _nonempty(v.type)]
    if not written:
        return []
    others = [v for v in program.inputs if isinstance(v.type, HostType) and _dense(v.type) and _nonempty(v.type)]
    lines = []
    for w in written:
        for o in others:
            if o is w or (o in written and program.inputs.index(o) < program.inputs.index(w)):
                continue
            a, b = names(w), names(o)
            wa, ob = _span_bytes(w.type), _span_bytes(o.type)
            same = " and _a != _b" if structure(wa) == structure(ob) else ""
            lines += [f"    _a, _b = {a}.data_ptr(), {b}.data_ptr()",
                      f"    if _a < _b + {ob} and _b < _a + {wa}{same}:",
                      f"        _refuse_overlap({a!r}, {b!r})"]
    return lines


def _nonempty(t: HostType) -> bool:
    return is_symbolic_type(t) or _span_bytes(t) > 0


def refuse_overlap(written: str, other: str):
    """Raised from the host function: `written` (stored into) partially overlaps argument `other`."""
    raise ArgumentError(f"arguments `{written}` and `{other}` overlap in memory and the kernel writes "
                        f"`{written}`: {PARTIAL}")


__all__ = ["check_internal_overlap", "overlap_guards", "refuse_overlap", "written_inputs"]
