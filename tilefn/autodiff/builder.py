"""Emitting the backward program's equations: typed by the abstract-eval rules, placed at the user's line."""
from __future__ import annotations

import itertools

import torch

from ..errors import TracingError
from ..trace import primitives as p
from ..trace.abstract_eval import ABSTRACT_EVAL
from ..trace.ir import Eqn, Lit, Var
from ..trace.types import PyScalarType, TensorType


class Builder:
    """A list of equations under construction; each new one carries `source` (the forward equation
    being transposed, so errors and the printed program point at the user's line) and a fresh site.
    `copies`: new Var -> the forward Var it copies (the printer names it as the user named the original)."""

    def __init__(self, sites=None, source=None, copies=None, grid=None):
        self.eqns: list = []
        self.sites = sites if sites is not None else itertools.count()
        self.source = source
        self.copies = copies if copies is not None else {}
        self.grid = grid  # the top-level loop being transposed

    def child(self) -> "Builder":
        """A builder for a nested region (a loop body), sharing this one's site counter, copies and grid loop."""
        return Builder(self.sites, self.source, self.copies, self.grid)

    def add_eqn(self, eqn: Eqn) -> None:
        self.eqns.append(eqn)

    def emit(self, prim, *inputs, **params) -> tuple:
        atoms = tuple(a if isinstance(a, (Var, Lit)) else literal(a) for a in inputs)
        try:
            types = ABSTRACT_EVAL[prim](*[a.type for a in atoms], **params)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise TracingError(f"tfn.vjp: building the backward of {prim}: {exc}", source=self.source) from None
        outputs = tuple(Var(t) for t in types)
        self.eqns.append(Eqn(prim, atoms, outputs, params, self.source, f"vjp_{prim.name}_{next(self.sites)}"))
        return outputs

    def op(self, prim, *inputs, **params) -> Var:
        """`emit` for a primitive with one output."""
        return self.emit(prim, *inputs, **params)[0]

    # --- shorthands used by the rules ---
    def add(self, a, b):
        return self.op(p.P["add"], a, b)

    def sub(self, a, b):
        return self.op(p.P["sub"], a, b)

    def mul(self, a, b):
        return self.op(p.P["mul"], a, b)

    def div(self, a, b):
        return self.op(p.P["div"], a, b)

    def neg(self, a):
        return self.op(p.P["neg"], a)

    def where(self, c, a, b):
        return self.op(p.P["where"], c, a, b)

    def zeros(self, shape, dtype):
        return self.op(p.full_p, shape=tuple(shape), value=0, dtype=dtype)

    def convert(self, x, dtype):
        return x if x.type.dtype == dtype else self.op(p.convert_p, x, dtype=dtype)

    def broadcast(self, x, shape):
        """`x` (of a shape that broadcasts to `shape`) as a value of exactly `shape`."""
        shape = tuple(shape)
        while x.type.rank < len(shape):
            x = self.op(p.expand_dims_p, x, axis=0)
        return x if tuple(x.type.shape) == shape else self.op(p.broadcast_to_p, x, shape=shape)

    def unbroadcast(self, ct, shape):
        """A cotangent of a broadcast result summed back onto an operand of `shape` (sums over the
        axes the operand was broadcast along)."""
        shape = tuple(shape)
        while ct.type.rank > len(shape):
            ct = self.op(p.reduce_sum_p, ct, axis=0, keepdim=False)
        for axis, (have, want) in enumerate(zip(ct.type.shape, shape)):
            if want == 1 and have != 1:
                ct = self.op(p.reduce_sum_p, ct, axis=axis, keepdim=True)
        return ct


def literal(value) -> Lit:
    """A Python number as an IR literal."""
    return Lit(value, PyScalarType(type(value)))


def is_float_value(atom) -> bool:
    """A device value that carries a cotangent: a tensor of a floating dtype (not a literal, not an int)."""
    return isinstance(atom, Var) and isinstance(atom.type, TensorType) and atom.type.dtype.is_floating_point


def cotangent_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype gradients accumulate in memory: float32 for half precision, else the value's own."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def accumulate(b: Builder, env: dict, var, ct) -> None:
    """Add `ct` to the cotangent of `var` (a floating device value; anything else has none), in float32
    for a half-precision value (so per-tile partial sums of a weight's gradient are not rounded)."""
    if ct is None or not is_float_value(var):
        return
    ct = b.convert(ct, cotangent_dtype(var.type.dtype))
    env[var] = ct if var not in env else b.add(env[var], ct)
