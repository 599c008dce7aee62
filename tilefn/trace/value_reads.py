"""Host code reading the value of a kernel argument (`int(offsets[-1])`, `lengths.max().item()`) or of a
captured tensor (a global's or closure cell's: `int(TABLE[0])`, through `captured_calls.py`).

Helion's host code runs at every call, so a jagged kernel sizes its output by the last offset. Here
host code runs once, while tracing; so such a read is taken at trace time from the call's real
tensors: the host equations computing the read tensor from the arguments and captures (only
non-mutating ones) are run on them, and the Program records the read (`ValueRead`, printed as a
`# guard:` line) and holds for that value only. A capture is read again where it is at each call
(`host.CapturedTensor`), so a change of its data, in place or by rebinding the name, is a new value.
`TracedFunction` keys a Program on the values of the reads its signature's traces made (learned at the
first trace: kernels that read none keep the plain key and the plain fast path; those that do evaluate
the reads again at each call)."""
from __future__ import annotations

from typing import Any

import attrs
import torch

from ..errors import HostReadsDevice, user_source
from . import state as st
from .arguments import read
from .dynamic import call_sizes
from .host import CapturedTensor, evaluate_host
from .ir import Var, walk_eqns
from .naming import op_name
from .primitives import WRITES, host_p
from .proxies import HOOKS
from .pytree import tree_leaves
from .sizes import SizeExpr

READS = {"item": lambda t: t.item(), "int": int, "float": float, "bool": bool, "index": lambda t: t.__index__(),
         "tolist": lambda t: t.tolist()}
_RANDOM = {"rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial", "dropout", "poisson"}
_MUTATING_DUNDERS = {"__setitem__", "__iadd__", "__isub__", "__imul__", "__itruediv__"}


@attrs.frozen(eq=False)
class ValueRead:
    """`how(var)` read by host code at `source`: `eqns` compute `var` from the tensors `inputs` ((Var, where)
    pairs: a path in the flat arguments, or a CapturedTensor); `value` is what the trace read; `text` the
    read as code."""

    text: str
    how: str
    var: Var
    eqns: tuple
    inputs: tuple
    value: Any
    source: Any = None

    @property
    def identity(self) -> tuple:
        """What makes two traces' reads the same read: the computation and where its inputs come from."""
        return (self.text, tuple(path for _, path in self.inputs))

    def run(self, flat) -> Any:
        """The value this read takes for the flat arguments `flat` (raising where torch does)."""
        sizes = call_sizes(flat) if any(isinstance(x, SizeExpr) for e in self.eqns
                                        for x in tree_leaves((list(e.params["args"]), dict(e.params["kwargs"])))) else None
        env = {var: where.read() if isinstance(where, CapturedTensor) else read(flat[where[0]], where[1:])
               for var, where in self.inputs}
        with torch._C.DisableTorchFunction():
            for eqn in self.eqns:
                env.update(zip(eqn.outputs, evaluate_host(eqn, env, sizes)))
            return READS[self.how](env[self.var])

    def evaluate(self, flat) -> Any:
        """`run` as a key (a list as a tuple), with an exception's type in place of a value (a later call's
        values may not admit the read)."""
        try:
            return _hashable(self.run(flat))
        except Exception as exc:
            return ("raises", type(exc).__name__)

    def __str__(self):
        where = f"  ({self.source.filename.rsplit('/', 1)[-1]}:{self.source.lineno})" if self.source else ""
        return f"{self.text} == {self.value!r}{where}"


def _hashable(value):
    return tuple(map(_hashable, value)) if isinstance(value, list) else value


def read_values(reads, flat) -> tuple:
    """The values `reads` take for the flat arguments `flat` (their part of a signature key)."""
    return tuple(r.evaluate(flat) for r in reads)


def merge_reads(known: tuple, new) -> tuple:
    """`known` and the reads of `new` it has not seen yet (by identity), in order."""
    seen = {r.identity for r in known}
    return known + tuple(r for r in new if r.identity not in seen)


@HOOKS.register("read_value")
def read_value(tensor, how: str):
    """Host code's `how(tensor)` (`.item()`, `int()`, ...) of a tensor computed from kernel arguments and
    captured tensors: its value for this call, recorded in the trace (`ValueRead`)."""
    state = st.require()
    source = user_source(2)
    if state.in_device:
        raise HostReadsDevice("a tile loop reads a tensor's value as a Python number; inside a tile loop "
                              "values are device values: compute with them there (torch ops, `if` on a "
                              "device scalar)", source=source)
    eqns = [*state.host_eqns, *(e for _, e in state.host_after_loop)]
    made_by = {v: e for e in eqns if e.prim is host_p for v in e.outputs}
    sources = {**state.arguments, **state.captured}
    chain, inputs = _chain(tensor.ir_var, made_by, sources, source)
    _refuse_writes(eqns, state, {v for v, _ in inputs}, made_by, sources, source)
    shown = _render(tensor.ir_var, made_by, state.hints)
    text = f"{shown}.{how}()" if how in ("item", "tolist") else f"{how}({shown})"
    order = {id(e): i for i, e in enumerate(eqns)}
    chain = tuple(sorted(chain, key=lambda e: order[id(e)]))
    entry = ValueRead(text, how, tensor.ir_var, chain, tuple(inputs), None, source)
    try:
        value = entry.run(state.flat)
    except Exception as exc:  # torch's own refusal, named (`int()` of a float tensor, of many elements)
        raise HostReadsDevice(f"host code's {text}: {exc}", source=source) from None
    state.value_reads.append(attrs.evolve(entry, value=value))
    return value


def _chain(var, made_by, sources, source):
    """The host equations computing `var` and the argument and captured tensors (`sources`: Var -> where
    it is read) they start from."""
    chain, inputs, todo, seen = [], [], [var], set()
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in sources:
            inputs.append((v, sources[v]))
            continue
        eqn = made_by.get(v)
        if eqn is None or not eqn.inputs or _makes_new(eqn):
            what = "a tensor host code makes" if eqn is not None else \
                "a tensor that is neither an argument nor a global's or closure cell's (an object's attribute, say)"
            raise HostReadsDevice(f"host code reads the value of {what}; only the values of the kernel's "
                                  "tensor arguments and captured tensors can be read on the host (at trace time, "
                                  "keyed on the value). Pass it as an argument, read it before calling the "
                                  "kernel, or compute with it in a tile loop", source=source)
        if _mutates(eqn):
            raise HostReadsDevice(f"host code reads a value computed by torch.{op_name(eqn.params['fn'])}, which "
                                  "writes in place; read the value before changing the tensor", source=source)
        chain.append(eqn)
        todo.extend(eqn.inputs)
    return chain, inputs


def _makes_new(eqn) -> bool:
    """An allocation or random draw: its values do not come from its inputs' values (`empty_like(x)`)."""
    name = op_name(eqn.params["fn"])
    return name.startswith(("empty", "new_")) or name.endswith("_like") or name in _RANDOM


def _mutates(eqn) -> bool:
    name = op_name(eqn.params["fn"])
    return name in _MUTATING_DUNDERS or (name.endswith("_") and not name.startswith("__")) or \
        "out" in eqn.params["kwargs"]


def _bases(var, made_by, sources) -> set:
    """The argument and captured tensors `var` is computed (or viewed) from."""
    out, todo = set(), [var]
    while todo:
        v = todo.pop()
        if v in sources:
            out.add(v)
        elif v in made_by:
            todo.extend(made_by[v].inputs)
    return out


def _refuse_writes(eqns, state, bases, made_by, sources, source) -> None:
    """A read of a tensor something wrote before it (in-place host code, a tile loop) would see the
    call's value before the write: refused."""
    written = [e.inputs[0] for e in eqns if e.prim is host_p and _mutates(e) and e.inputs]
    if state.kernel is not None:
        written += [e.inputs[0] for e in walk_eqns(state.kernel.eqns) if e.prim in WRITES]
    if any(_bases(w, made_by, sources) & bases for w in written):
        raise HostReadsDevice("host code reads the value of a tensor that is written before the read (in "
                              "place on the host, or by a tile loop); host code runs while the kernel is "
                              "traced and cannot see those writes. Read it before, or split the kernel in two",
                              source=source)


def _render(var, made_by, hints) -> str:
    """`var` as the host code that computes it (`x_offsets[-1]`)."""
    if var not in made_by:
        return hints.get(var, "?")
    eqn = made_by[var]
    args = [_render(a, made_by, hints) if isinstance(a, Var) else repr(a) for a in eqn.params["args"]]
    kwargs = [f"{k}={_render(v, made_by, hints) if isinstance(v, Var) else repr(v)}"
              for k, v in eqn.params["kwargs"].items()]
    name = op_name(eqn.params["fn"])
    if name == "__getitem__":
        return f"{args[0]}[{args[1]}]"
    return f"{args[0]}.{name}({', '.join([*args[1:], *kwargs])})" if args else f"torch.{name}({', '.join(kwargs)})"
