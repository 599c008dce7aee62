"""`if` and `while` on device scalars, as the rewritten kernel source (`branch_source.py`) runs them.

An `if` whose test is a 0-d device value traces both branches, one after the other, each into a
region of its own: before the `else` branch the names the `if` assigns get back their values from
before the statement; after it, every name the branches left with different device values gets a
`cond` output (a name bound to a Python number in one branch and a device value in the other is
made a device value of that type in its branch). Names that cannot be merged (bound in one branch
only, Python values that differ, tiles of loops inside a branch) are bound to `Unmerged`, which
names the problem when it is used. A `while` whose test is a device scalar traces its body once: the
test before the loop gives the first condition, the test after the body (evaluated on the body's
values) the next one; names the body rebinds are carries, found as `tl.tile` loops find theirs.
A tile-shaped test is an error that points at torch.where.
"""
from __future__ import annotations

import builtins
import functools
import sys
import types

import torch

from ..errors import DataDependentControlFlow, SourceInfo, TracingError, UnsupportedStatement, user_frame
from . import state as st
from .branch_source import branching
from .early_exits import RESULT
from .ir import Eqn, Region, Var, map_regions, substitute, walk_eqns
from .loops import find_carries, name_device_values
from .primitives import cond_p, full_p, while_p
from .proxies import BlockValue, DeviceValue, apply, check_in_scope
from .scalars import RuntimeScalar
from .state import RegionBuilder
from .types import TileDim
from .unmerged import Unmerged


def _statement_source(line: int) -> SourceInfo:
    frame = user_frame()
    return SourceInfo(frame.f_code.co_filename, line, frame.f_code.co_name)


def _predicate(value, statement: str, source=None):
    """The boolean device scalar a test stands for, or None for a static (Python) test."""
    if isinstance(value, RuntimeScalar) and st.require().in_device:  # `if beta == 0.0:` in a loop: tested per call
        value = value.device_value(torch.bool)
    if not isinstance(value, DeviceValue):
        return None
    check_in_scope(value)
    if value.ndim != 0 and _one_element(value):
        value = value.sum()  # a tile of block size 1 (Helion's `labels[tile] == k` with block_size=1)
    if value.ndim != 0:
        raise DataDependentControlFlow(
            f"`{statement}` on a tile-shaped value ({value.ir_var.type.render()}): a program takes one branch for "
            "all its lanes, so the condition must be a scalar. Select per element with torch.where(cond, a, b), "
            "or reduce the condition to one value (e.g. `(x > 0).any()`)", source=source)
    return value if value.dtype == torch.bool else value != 0


def _one_element(value: DeviceValue) -> bool:
    """Whether every dim of `value` is 1 or a tile whose block size is fixed at 1."""
    blocks = st.require().blocks
    return all(d == 1 or isinstance(d, TileDim) and blocks[d.block].fixed == 1 for d in value.shape)


def _refuse_exits(exits, statement: str) -> None:
    if exits:
        frame = user_frame()
        raise UnsupportedStatement(
            f"`return`, `break` or `continue` inside an `{statement}` on a device value: both branches are traced "
            "and every program runs to the end of the kernel. A `continue` after which the loop body has nothing "
            "left to run outside the `if` is taken (the rest of the body becomes the other branch), and so is a "
            "helper's `return` that ends it; guard other code with the condition instead",
            source=SourceInfo(frame.f_code.co_filename, exits[0], frame.f_code.co_name))


def _as_device(number, like: DeviceValue, builder):
    """`number` as a device value of `like`'s type, made in `builder`'s region (`number` itself where a
    float would go into an integer value, or a bool into a number: left unmerged)."""
    if isinstance(number, float) and not like.dtype.is_floating_point or isinstance(number, bool) != (like.dtype == torch.bool):
        return number
    state = st.require()
    state.region, previous = builder, state.region
    try:
        return apply(full_p, shape=like.shape, value=number, dtype=like.dtype)
    finally:
        state.region = previous


def _same_number(a, b) -> bool:
    """Equal Python numbers of one type (`scale = 1.5` in both branches)."""
    return type(a) is type(b) and isinstance(a, (bool, int, float)) and a == b


class Branch:
    """One run of an `if` statement: static (`traced` False) or traced into a `cond`."""

    def __init__(self, test, names, exits, line):
        self.source = _statement_source(line)
        self.pred, self.names = _predicate(test, "if", self.source), names
        self.traced = self.pred is not None
        if self.traced:
            _refuse_exits(exits, "if")
        else:
            self.value = bool(test)

    def then_(self) -> bool:
        if not self.traced:
            return self.value
        state = st.require()
        self.parent = state.region
        self.entry = dict(sys._getframe(1).f_locals)
        for name, value in self.entry.items():
            if isinstance(value, DeviceValue):
                state.hints.setdefault(value.ir_var, name)
        self.then_region = state.region = RegionBuilder(self.parent)
        return True

    def orelse(self) -> tuple:
        state = self._close(self.then_region)
        self.then_exit = dict(sys._getframe(1).f_locals)
        self.else_region = state.region = RegionBuilder(self.parent)
        unbound = Unmerged(f"this name is bound only inside the `if` at {self.source}, not before it; bind it "
                           "before the `if`")
        return tuple(self.entry.get(name, unbound) for name in self.names)

    def else_(self) -> bool:
        return True if self.traced else not self.value

    def end(self) -> tuple:
        state = self._close(self.else_region)
        else_exit = dict(sys._getframe(1).f_locals)
        state.region = self.parent
        merged, outs = {}, []
        for name in self.names:
            then_value, else_value = self.then_exit.get(name), else_exit.get(name)
            merged[name] = self._merge(name, then_value, else_value, outs)
        then_body = Region((), self.then_region.eqns, [t.ir_var for _, t, _ in outs])
        else_body = Region((), self.else_region.eqns, [e.ir_var for _, _, e in outs])
        outputs = tuple(Var(t.ir_var.type) for _, t, _ in outs)
        self.parent.eqns.append(Eqn(cond_p, (self.pred.ir_var,), outputs, {"region": then_body, "orelse": else_body},
                                    self.source, state.new_site("cond")))
        values = [DeviceValue(var, self.parent) for var in outputs]
        for (name, _, _), var in zip(outs, outputs):
            state.hints[var] = name
        return tuple(_filled(merged[name], values) for name in self.names)

    def _close(self, builder):
        state = st.require()
        if state.region is not builder:
            raise TracingError("a tile loop inside a branch of an `if` on a device value did not finish")
        builder.closed = True
        name_device_values(state, sys._getframe(2).f_locals, builder, ())
        return state

    def _merge(self, name, then_value, else_value, outs):
        """The value `name` has after the statement; a pair of device values is appended to `outs` and
        stands as its `_Slot` (tuples of one length, a helper's `return a, b`, merge item by item)."""
        if then_value is else_value or _same_number(then_value, else_value):
            return then_value
        if type(then_value) is tuple and type(else_value) is tuple and len(then_value) == len(else_value):
            return tuple(self._merge(name, a, b, outs) for a, b in zip(then_value, else_value))
        where = f"{'the value returned' if name == RESULT else f'`{name}`'} after the `if` at {self.source}"
        if isinstance(then_value, (int, float)) and isinstance(else_value, DeviceValue):
            then_value = _as_device(then_value, else_value, self.then_region)
        elif isinstance(else_value, (int, float)) and isinstance(then_value, DeviceValue):
            else_value = _as_device(else_value, then_value, self.else_region)
        if any(v is None or isinstance(v, Unmerged) for v in (then_value, else_value)):
            return Unmerged(f"{where} is bound in only one branch (and not before the `if`); bind it before the "
                            "`if` or in both branches")
        live = [isinstance(v, DeviceValue) and (v.region in (self.then_region, self.else_region) or not v.region.closed)
                for v in (then_value, else_value)]
        if not all(live):
            return Unmerged(f"{where}: the branches leave it with values that cannot be merged (only device values "
                            f"of the same type can be): {then_value!r} and {else_value!r}")
        if then_value.ir_var.type != else_value.ir_var.type:
            return Unmerged(f"{where}: the branches leave it as {then_value.ir_var.type.render()} and "
                            f"{else_value.ir_var.type.render()}; make them match (e.g. with .to(dtype))")
        outs.append((name, then_value, else_value))
        return _Slot(len(outs) - 1)


class _Slot(int):
    """Where a merged value goes: the index of its `cond` output."""


def _filled(merged, values):
    """`merged` with each `_Slot` replaced by its `cond` output."""
    if isinstance(merged, _Slot):
        return values[merged]
    if type(merged) is tuple:
        return tuple(_filled(m, values) for m in merged)
    return merged


class WhileLoop:
    """One `while` statement: static (plain Python) or traced into a `while` equation."""

    def __init__(self, exits, line):
        self.exits, self.steps, self.region, self.source = exits, 0, None, _statement_source(line)

    def step(self, test) -> bool:
        self.steps += 1
        pred = _predicate(test, "while", self.source)
        if self.region is not None:
            return self._close(pred, sys._getframe(1))
        if pred is None:
            return bool(test)
        if self.steps > 1:
            raise DataDependentControlFlow(
                f"the condition of this `while` became a device value after {self.steps - 1} iteration(s) on the "
                "host; make the values it depends on device values before the loop (e.g. torch.zeros([], ...))",
                source=self.source)
        _refuse_exits(self.exits, "while")
        state = st.require()
        self.first, self.parent = pred, state.region
        self.entry = dict(sys._getframe(1).f_locals)
        self.region = state.region = RegionBuilder(self.parent)
        return True

    def _close(self, pred, frame) -> bool:
        state = st.require()
        if state.region is not self.region:
            raise TracingError("a tile loop inside a `while` body did not finish")
        if pred is None:
            raise DataDependentControlFlow("the condition of this `while` is a device value before the loop but "
                                           "not after its body; compute it from device values in both places",
                                           source=self.source)
        exit_locals = dict(frame.f_locals)
        carries = find_carries(self.entry, exit_locals, self.region, ())
        params, mapping = [], {}
        for name, init, _ in carries:
            param = Var(init.ir_var.type)
            mapping[init.ir_var] = param
            params.append(param)
            state.hints[param] = name
        results = [pred.ir_var] + [out.ir_var for _, _, out in carries]
        body = substitute(Region(params, self.region.eqns, results), mapping)
        outputs = tuple(Var(out.ir_var.type) for _, _, out in carries)
        inputs = (self.first.ir_var, *(init.ir_var for _, init, _ in carries))
        self.region.closed = True
        name_device_values(state, exit_locals, self.region, ())
        state.region = self.parent
        self.parent.eqns.append(Eqn(while_p, inputs, outputs, {"region": body}, self.source, state.new_site("while")))
        for (name, _, out), var in zip(carries, outputs):
            out.ir_var, out.region = var, self.parent
            state.hints[var] = name
        return False


_LIBRARIES = ("torch", "tilefn", "triton", "helion", "numpy")


def callee(fn):
    """A function the kernel calls by name: a helper of the user's gets its `if`/`while` routed here too."""
    if isinstance(fn, types.FunctionType) and (fn.__module__ or "").partition(".")[0] not in _LIBRARIES:
        return branching(fn, sys.modules[__name__])
    return fn


def branch(test, names, exits, line) -> Branch:
    return Branch(test, names, exits, line)


def while_loop(exits, line) -> WhileLoop:
    return WhileLoop(exits, line)


def not_(value):
    pred = _predicate(value, "not")
    return not value if pred is None else torch.logical_not(pred)


def _combine(first, rest, device_op, stop_on: bool):
    """`and`/`or` over a first operand and thunks for the others; device operands are combined with `device_op`."""
    preds = []
    for value in (first, *rest):
        value = value if value is first else value()
        pred = _predicate(value, "and" if stop_on is False else "or")
        if pred is None:
            if bool(value) is stop_on:
                return stop_on
            continue
        preds.append(pred)
    return functools.reduce(device_op, preds) if preds else not stop_on


def and_(first, *rest):
    return _combine(first, rest, torch.logical_and, False)


def or_(first, *rest):
    return _combine(first, rest, torch.logical_or, True)


def copy(value):
    """`a = b` in a kernel: a live device value is cloned (a value of its own for loop carries); the rest as is."""
    state = st.current()
    live = isinstance(value, DeviceValue) and state is not None and state.in_device and not value.region.closed
    if live and not isinstance(value, BlockValue) and value.region.encloses(state.region):
        copied = value.clone()
        state.name_copies.add(copied.ir_var)  # (dropped once the kernel is traced: `without_name_copies`)
        return copied
    return value


def without_name_copies(region: Region, copies: set) -> Region:
    """`region` with the values `copy` made replaced by what they copy: they only kept names apart while tracing."""
    mapping = {e.outputs[0]: e.inputs[0] for e in walk_eqns(region.eqns) if e.outputs and e.outputs[0] in copies}
    if not mapping:
        return region

    def root(v):
        while v in mapping:
            v = mapping[v]
        return v

    def drop(r: Region) -> Region:
        eqns = [map_regions(e, drop) for e in r.eqns if not (e.outputs and e.outputs[0] in mapping)]
        return Region(r.params, eqns, r.results)

    return drop(substitute(region, {k: root(k) for k in mapping}))


def builtin(fn, *args):
    """`min(...)`/`max(...)`: on device scalars, torch.minimum/maximum; else the function itself."""
    values = args[0] if len(args) == 1 else args
    if fn in (builtins.min, builtins.max) and len(args) > 1 and any(isinstance(a, DeviceValue) for a in args):
        scalars = [a for a in values if isinstance(a, DeviceValue)]
        if any(a.ndim for a in scalars):
            raise DataDependentControlFlow(f"{fn.__name__}() of tile-shaped values; use torch.{fn.__name__}imum")
        combine = torch.minimum if fn is builtins.min else torch.maximum
        return functools.reduce(lambda a, b: combine(*_as_pair(a, b)), values)
    return fn(*args)


def _as_pair(a, b):
    """Two operands of torch.minimum/maximum, a Python number as a device scalar of the other's dtype
    (float32 for a float beside an integer value, as torch promotes)."""
    def scalar(number, other):
        floating = other.dtype.is_floating_point or not isinstance(number, float)
        return apply(full_p, shape=(), value=number, dtype=other.dtype if floating else torch.float32)
    return (a if isinstance(a, DeviceValue) else scalar(a, b)), (b if isinstance(b, DeviceValue) else scalar(b, a))
