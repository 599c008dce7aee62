"""Symbolic sizes: what `tfn.jit(static_shapes=False)` traces a tensor argument's sizes and strides as.

A `SizeExpr` is an integer expression over `SizeVar` leaves (`s0` = a size of an argument, `st0` = a
stride), with the traced call's value as its `hint`. Arithmetic with ints and other expressions builds
expressions (constants folded); `str()` is Python/Triton source over the symbols' names, so the same text
is a kernel argument expression, a launcher expression and the printed IR.

Any *decision* on a size while tracing is a guard: a comparison, `bool()`, `int()` / `__index__` (a
Python `range(m)`, a list index, a torch call that needs a number) evaluates on the hint and records the
fact (`expr op value`) in the trace; the Program is then valid for exactly the calls where all its facts
hold (`holds`), and the jit keys on them (`tilefn.traced`). So host code such as `if m > 1024:` traces
once per outcome, and code that needs the number itself specialises on that size. Outside tracing
(lowering, the tuner) a comparison with a symbolic value is an error: those layers must not decide
on sizes they do not know.
"""
from __future__ import annotations

import operator

import attrs

from ..errors import user_frame, user_source
from . import state as st

_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod,
        "max": max, "min": min}
_COMPARISONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
                "==": operator.eq, "!=": operator.ne}


class SizeExpr:
    """An integer expression over SizeVars (see the module docstring)."""

    __slots__ = ()
    hint: int

    # --- building ---------------------------------------------------------------------
    def _binary(self, op, other, reflected=False):
        if isinstance(other, bool) or not isinstance(other, (int, SizeExpr)):
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        return binary(op, a, b)

    __add__ = lambda self, o: self._binary("+", o)  # noqa: E731
    __radd__ = lambda self, o: self._binary("+", o, True)  # noqa: E731
    __sub__ = lambda self, o: self._binary("-", o)  # noqa: E731
    __rsub__ = lambda self, o: self._binary("-", o, True)  # noqa: E731
    __mul__ = lambda self, o: self._binary("*", o)  # noqa: E731
    __rmul__ = lambda self, o: self._binary("*", o, True)  # noqa: E731
    __floordiv__ = lambda self, o: self._binary("//", o)  # noqa: E731
    __rfloordiv__ = lambda self, o: self._binary("//", o, True)  # noqa: E731
    __mod__ = lambda self, o: self._binary("%", o)  # noqa: E731
    __rmod__ = lambda self, o: self._binary("%", o, True)  # noqa: E731

    def __neg__(self):
        return binary("-", 0, self)

    def __pos__(self):
        return self

    # --- decisions: guards while tracing ----------------------------------------------------------
    def _decide(self, op, other):
        if isinstance(other, bool) or not isinstance(other, (int, SizeExpr)):
            return NotImplemented
        difference = binary("-", self, other)
        if isinstance(difference, int):  # decided without knowing the sizes (s0 - s0, s0 + 1 - s0)
            return _COMPARISONS[op](difference, 0)
        if op in ("==", "!=") and st.current() is None:
            return (op == "!=")  # structurally different: not provably equal (lowering's "is it 1?")
        return guard(self, op, other)

    __lt__ = lambda self, o: self._decide("<", o)  # noqa: E731
    __le__ = lambda self, o: self._decide("<=", o)  # noqa: E731
    __gt__ = lambda self, o: self._decide(">", o)  # noqa: E731
    __ge__ = lambda self, o: self._decide(">=", o)  # noqa: E731
    __eq__ = lambda self, o: self._decide("==", o)  # noqa: E731
    __ne__ = lambda self, o: self._decide("!=", o)  # noqa: E731

    def __bool__(self):
        return guard(self, "!=", 0)

    def __index__(self):
        guard(self, "==", self.hint, _call_site())
        return self.hint

    __int__ = __index__

    def __float__(self):
        return float(self.__index__())

    def __repr__(self):
        return str(self)

    def evaluate(self, sizes: dict) -> int:
        """The value under `sizes` (SizeVar name -> int)."""
        raise NotImplementedError


@attrs.frozen(eq=False, repr=False)
class SizeVar(SizeExpr):
    """A size (`s0`) or stride (`st0`) of a program input: `input` its position in `Program.inputs`,
    `kind` "size" or "stride", `dim` the axis; `divisible16` and `wide` (offsets may pass int32) are
    facts of the signature it was traced for."""

    name: str
    input: int
    kind: str
    dim: int
    hint: int
    divisible16: bool = False
    wide: bool = False

    def __str__(self):
        return self.name

    def evaluate(self, sizes):
        return sizes[self.name]

    def structure(self):
        return self.name


@attrs.frozen(eq=False, repr=False)
class SizeOp(SizeExpr):
    """`left op right` (op in + - * // % max min)."""

    op: str
    left: object
    right: object
    hint: int

    def __str__(self):
        if self.op in ("max", "min"):
            return f"{self.op}({self.left}, {self.right})"
        return f"({self.left} {self.op} {self.right})"

    def evaluate(self, sizes):
        return _OPS[self.op](value(self.left, sizes), value(self.right, sizes))

    def structure(self):
        return (self.op, structure(self.left), structure(self.right))


def structure(x):
    """A hashable, comparable form of an int or SizeExpr (SizeExpr's own == is a decision)."""
    return x.structure() if isinstance(x, SizeExpr) else x


def _same(a, b) -> bool:
    return structure(a) == structure(b)


SizeExpr.__hash__ = lambda self: hash(structure(self))


def hint(x) -> int:
    """The traced call's value of an int or SizeExpr (for heuristics, never for semantics)."""
    return x.hint if isinstance(x, SizeExpr) else x


def value(x, sizes: dict) -> int:
    """An int or SizeExpr evaluated under `sizes`."""
    return x.evaluate(sizes) if isinstance(x, SizeExpr) else x


def is_symbolic(x) -> bool:
    return isinstance(x, SizeExpr)


def binary(op: str, a, b):
    """`a op b` folded where it can be: ints give an int, x + 0, x * 1, x // 1, 0 - 0..."""
    if not isinstance(a, SizeExpr) and not isinstance(b, SizeExpr):
        return _OPS[op](a, b)
    if op == "+" and b == 0 and not isinstance(b, SizeExpr):
        return a
    if op == "+" and a == 0 and not isinstance(a, SizeExpr):
        return b
    if op == "-" and not isinstance(b, SizeExpr) and b == 0:
        return a
    if op == "-" and _same(a, b):
        return 0
    if op == "-" and isinstance(a, SizeOp) and a.op == "+":  # (x + c) - x, (x + c) - c
        if _same(a.left, b):
            return a.right
        if _same(a.right, b):
            return a.left
    if op == "*" and not isinstance(b, SizeExpr) and b in (0, 1):
        return a if b == 1 else 0
    if op == "*" and not isinstance(a, SizeExpr) and a in (0, 1):
        return b if a == 1 else 0
    if op == "//" and not isinstance(b, SizeExpr) and b == 1:
        return a
    if op in ("max", "min") and _same(a, b):
        return a
    return SizeOp(op, a, b, _OPS[op](hint(a), hint(b)))


def cdiv(a, b):
    """ceil(a / b) for sizes (a >= 0, b > 0), symbolic or not."""
    if not isinstance(a, SizeExpr) and not isinstance(b, SizeExpr):
        return -(-a // b)
    return binary("//", binary("+", a, binary("-", b, 1)), b)


def smax(a, b):
    """max(a, b) without deciding (a symbolic max)."""
    return binary("max", a, b)


def smin(a, b):
    return binary("min", a, b)


def _call_site():
    """(frame id, bytecode offset) of the user's call running now."""
    frame = user_frame()
    return (id(frame), frame.f_lasti) if frame is not None else None


def forget_argument_checks() -> None:
    """Drop the guards `__index__` recorded during the user's call running now: torch's argument parser
    calls `__index__` on the first element of a size list (`torch.empty([m, n])`) before the call
    reaches the trace, which then keeps the sizes symbolic or guards them itself. A Python `range(m)` or
    `int(m)` is a call of its own (another bytecode offset), so its guard stays."""
    state = st.current()
    site = _call_site()
    if state is not None and site is not None and state.guards:
        state.guards[:] = [f for f in state.guards if f[6] != site]


def guard(expr, op: str, rhs, site=None) -> bool:
    """Decide `expr op rhs` (rhs an int or SizeExpr) on the hints and record the fact in the trace (an
    error outside tracing). `site`: the user's call an `__index__` came from (`forget_argument_checks`)."""
    result = _COMPARISONS[op](hint(expr), hint(rhs))
    state = st.current()
    if state is None:
        raise TypeError(f"a symbolic size ({expr}) was compared outside tracing: {expr} {op} {rhs}; "
                        "lowering must not decide on sizes it does not know")
    fact = (structure(expr), expr, op, rhs, result, user_source(), site)
    if all((f[0], f[2], structure(f[3])) != (fact[0], op, structure(rhs)) for f in state.guards):
        state.guards.append(fact)
    return result


@attrs.frozen
class Guard:
    """A fact a Program was traced under: `expr op rhs` is `result`."""

    expr: object
    op: str
    rhs: object  # an int or a SizeExpr
    result: bool
    source: object = attrs.field(default=None, eq=False)  # the user's line that decided it

    def holds(self, sizes: dict) -> bool:
        return _COMPARISONS[self.op](value(self.expr, sizes), value(self.rhs, sizes)) == self.result

    def __str__(self):
        where = f"  ({self.source.filename.rsplit('/', 1)[-1]}:{self.source.lineno})" if self.source else ""
        return f"{self.expr} {self.op if self.result else _NEGATED[self.op]} {self.rhs}{where}"

    def key(self):
        return (structure(self.expr), self.op, structure(self.rhs), self.result)


_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


def guards_of(state) -> tuple:
    return tuple(Guard(expr, op, rhs, result, source) for _, expr, op, rhs, result, source, _ in state.guards)


def bucket(n: int) -> int:
    """A size rounded up to a power of two (0 and 1 kept): the tuning bucket it falls in."""
    return n if n <= 1 else 1 << (n - 1).bit_length()


__all__ = ["SizeExpr", "SizeVar", "SizeOp", "Guard", "binary", "cdiv", "smax", "smin", "guard", "hint",
           "value", "is_symbolic", "bucket", "structure", "guards_of"]
