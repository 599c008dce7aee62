"""The immutable IR: variables, literals, equations, regions and programs."""
from __future__ import annotations

from typing import Any

import attrs
from pyrsistent import pmap, pvector
from pyrsistent.typing import PMap, PVector

from ..errors import SourceInfo
from ..rule_table import RuleTable
from .primitives import Primitive, kernel_p

TEXT_FORM = RuleTable("text form")  # "program" -> the printer, registered by trace/printer


@attrs.frozen(eq=False)
class Var:
    """An SSA variable, compared by identity and named only when printed."""

    type: Any


@attrs.frozen
class Lit:
    """A constant operand (a Python number)."""

    value: Any
    type: Any


Atom = Any  # Var | Lit


@attrs.frozen
class Eqn:
    """One primitive application: `outputs = prim[params](inputs)`."""

    prim: Primitive
    inputs: tuple = attrs.field(converter=tuple)
    outputs: tuple = attrs.field(converter=tuple)
    params: PMap = attrs.field(converter=pmap, factory=pmap)
    source: SourceInfo | None = attrs.field(default=None, eq=False)
    site: str | None = attrs.field(default=None, eq=False)  # stable id from the trace: knob sites key on it


@attrs.frozen
class Region:
    """A loop body: parameters bound per iteration, equations, and the values it yields."""

    params: tuple = attrs.field(converter=tuple)
    eqns: PVector = attrs.field(converter=pvector)
    results: tuple = attrs.field(converter=tuple, factory=tuple)


@attrs.frozen
class BlockInfo:
    """A block-size symbol: the extent it tiles (when static), a size fixed by the user, and the value
    host code computed with while tracing (`tl.register_block_size` read as an int; the Program holds
    for that value only: `tilefn.trace.host_blocks`)."""

    id: int
    extent: int | None
    fixed: int | None = None
    host: int | None = None


@attrs.frozen
class Tunable:
    """A knob the kernel registers with `register_tunable`: its choices, default and traced value."""

    name: str
    choices: tuple = attrs.field(converter=tuple)
    default: Any
    value: Any


@attrs.frozen
class Program:
    """A traced kernel function: host equations around at most one `kernel` equation."""

    name: str
    inputs: tuple = attrs.field(converter=tuple)
    eqns: PVector = attrs.field(converter=pvector)
    outputs: Any  # a Var, Lit, None, or a tuple of those
    blocks: tuple = attrs.field(converter=tuple, factory=tuple)
    consts: tuple = attrs.field(converter=tuple, factory=tuple)  # (Var, captured tensor) pairs
    hints: PMap = attrs.field(converter=pmap, factory=pmap)  # Var -> the user's name for it
    params: tuple = attrs.field(converter=tuple, factory=tuple)  # the kernel's parameter names, in order
    tunables: tuple = attrs.field(converter=tuple, factory=tuple)  # Tunable per register_tunable name
    captured: tuple = attrs.field(converter=tuple, factory=tuple)  # (Var, Capture): consts read at each call
    # per input: where the call's flat arguments (`binding.py`) hold it: (parameter index, *steps of
    # `arguments.read`), e.g. (1,) for the second parameter, (2, ("item", 0)) for its first item
    input_paths: tuple = attrs.field(converter=tuple, factory=tuple)
    # static_shapes=False: the facts decided on symbolic sizes while tracing (tilefn.trace.sizes.Guard);
    # the Program serves exactly the calls where all hold
    guards: tuple = attrs.field(converter=tuple, factory=tuple)
    # host code's reads of argument values (tilefn.trace.value_reads.ValueRead): the Program holds for these values
    value_reads: tuple = attrs.field(converter=tuple, factory=tuple)

    @property
    def kernel(self) -> Eqn | None:
        return next((e for e in self.eqns if e.prim is kernel_p), None)

    def __str__(self) -> str:
        return TEXT_FORM["program"](self)


REGION_PARAMS = ("region", "orelse")  # the params that hold Regions: a body, and a cond's else branch


def regions(eqn: Eqn) -> tuple:
    """The Regions `eqn` holds: a loop's or kernel's body; a cond's two branches."""
    return tuple(eqn.params[k] for k in REGION_PARAMS if k in eqn.params)


def map_regions(eqn: Eqn, fn) -> Eqn:
    """`eqn` with each of its Regions `r` replaced by `fn(r)`."""
    params = eqn.params
    for key in REGION_PARAMS:
        if key in params:
            params = params.set(key, fn(params[key]))
    return attrs.evolve(eqn, params=params)


def substitute(region: Region, mapping: dict) -> Region:
    """A copy of `region` with every use of a key of `mapping` replaced by its value."""
    if not mapping:
        return region

    def sub_eqn(eqn: Eqn) -> Eqn:
        inputs = tuple(mapping.get(a, a) if isinstance(a, Var) else a for a in eqn.inputs)
        return attrs.evolve(map_regions(eqn, lambda r: substitute(r, mapping)), inputs=inputs)

    results = tuple(mapping.get(r, r) if isinstance(r, Var) else r for r in region.results)
    return Region(region.params, [sub_eqn(e) for e in region.eqns], results)


def walk_eqns(eqns):
    """Every equation in `eqns` and, depth first, in their nested regions."""
    for eqn in eqns:
        yield eqn
        for region in regions(eqn):
            yield from walk_eqns(region.eqns)
