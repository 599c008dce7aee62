"""Knob sites: the places of a Program that a Config's per-site lists configure, in Helion's order.

Every equation gets a stable id when it is traced (`Eqn.site`, e.g. "load_3"); rewrites keep it
(CSE keeps the survivor's, DCE drops the dead) and the looped-reductions rewrite gives its copies
the id plus a suffix ("load_3/chunk"), so a copy is configured as its original. The sites are
computed once per Program, from its Config-independent form (`passes.canonical`):

| site kind    | what it is                                     | Config lists indexed by it          |
|--------------|------------------------------------------------|-------------------------------------|
| `load`       | a load, program order (depth first)            | indexing, load_eviction_policies    |
| `store`      | a store, program order                         | indexing                            |
| `atomic`     | an atomic (`tl.atomic_*`), program order       | atomic_indexing                     |
| `grid_loop`  | a top-level loop of 2+ dimensions              | loop_orders, l2_groupings, flatten_loops |
| `inner_loop` | a loop nested in a top-level loop, depth first | range_*, static_ranges              |
| `reduction`  | an extent reduced whole in a grid loop (first reduction of it) | reduction_loops     |

`indexing` counts loads and stores together in program order (Helion's graph order);
`load_eviction_policies` counts the loads alone. Lowering reads knob values through `Sites.value`
and the tuner builds its knobs from the same sites, so a position always names one place.
Loops the rewrites add (reduction chunks) are no sites: they run with Triton's defaults.
"""
from __future__ import annotations

import attrs
from pyrsistent import pmap
from pyrsistent.typing import PMap

from ..errors import SourceInfo
from ..trace.ir import Lit, Program, walk_eqns
from ..trace.primitives import ATOMIC, load_p, loop_p, store_p
from ..trace.queries import grid_loops
from .access_forms import access_forms, atomic_forms
from .rewrites.reduction_loops import first_reductions

FIELD_KINDS = {  # Config list field -> the site kinds its entries configure, in one numbering
    "indexing": ("load", "store"),
    "atomic_indexing": ("atomic",),
    "load_eviction_policies": ("load",),
    "loop_orders": ("grid_loop",),
    "l2_groupings": ("grid_loop",),
    "flatten_loops": ("grid_loop",),
    "range_unroll_factors": ("inner_loop",),
    "range_num_stages": ("inner_loop",),
    "range_multi_buffers": ("inner_loop",),
    "range_flattens": ("inner_loop",),
    "range_warp_specializes": ("inner_loop",),
    "static_ranges": ("inner_loop",),
    "reduction_loops": ("reduction",),
}
KIND_NAMES = {"load": "load", "store": "store", "atomic": "atomic", "grid_loop": "tile loop",
              "inner_loop": "inner loop", "reduction": "whole-row reduction"}


@attrs.frozen
class Site:
    """One configurable place: its stable id, kind, index in each Config list, and what its knobs may be.

    `facts`: `forms` (accesses: the indexing forms it can take), `dims` (loops), `static` (inner
    loops: static int bounds, so tl.static_range is possible), `extent` (reductions).
    """

    id: str
    kind: str
    positions: PMap
    source: SourceInfo | None
    facts: PMap = attrs.field(converter=pmap, factory=pmap)

    def describe(self) -> str:
        """How errors name this site: "load at kernel.py:12"."""
        where = f" at {self.source}" if self.source is not None else ""
        return f"{KIND_NAMES[self.kind]}{where}"


def base_id(site_id: str | None) -> str | None:
    """The id of the traced equation a (possibly copied) equation stands for."""
    return site_id.split("/", 1)[0] if site_id is not None else None


@attrs.frozen
class Sites:
    """The knob sites of one Program in program order, looked up by id or by Config field."""

    sites: tuple = attrs.field(converter=tuple)
    by_id: PMap = attrs.field(init=False)

    def __attrs_post_init__(self):
        object.__setattr__(self, "by_id", pmap({s.id: s for s in self.sites}))

    def of(self, eqn) -> Site | None:
        """The site an equation configures (its own, or its original's for a rewrite's copy)."""
        return self.by_id.get(base_id(eqn.site))

    def of_field(self, field: str) -> tuple:
        """The sites `field`'s entries configure, in position order."""
        return tuple(s for s in self.sites if field in s.positions)

    def value(self, config, field: str, eqn):
        """`config.<field>` at `eqn`'s site: None when unset, short, or `eqn` is no site of `field`."""
        site = self.of(eqn)
        if site is None or field not in site.positions:
            return None
        values = getattr(config, field)
        if isinstance(values, str):  # indexing, atomic_indexing: one form for every access
            return values
        position = site.positions[field]
        return values[position] if position < len(values) else None


def _loop_facts(loop) -> dict:
    dims = loop.params["dims"]
    bounds = loop.inputs[:2 * len(dims)]
    static = all(isinstance(a, Lit) and isinstance(a.value, int) for a in bounds)
    return {"dims": len(dims), "static": static}


def _raw_sites(program: Program):
    """(kind, eqn, facts) per site, before numbering: program order within each kind."""
    for extent, eqn in first_reductions(program):
        yield "reduction", eqn, {"extent": extent}
    for loop in grid_loops(program):
        if len(loop.params["dims"]) > 1:
            yield "grid_loop", loop, _loop_facts(loop)
        for eqn in walk_eqns(loop.params["region"].eqns):
            if eqn.prim in (load_p, store_p):
                yield eqn.prim.name, eqn, {"forms": access_forms(eqn)}
            elif eqn.prim in ATOMIC:
                yield "atomic", eqn, {"forms": atomic_forms(eqn)}
            elif eqn.prim is loop_p:
                yield "inner_loop", eqn, _loop_facts(eqn)


def sites_of(program: Program) -> Sites:
    """The knob sites of `program` (give it the canonical form: `passes.canonical(program)`)."""
    counts: dict = {}
    out = []
    for kind, eqn, facts in _raw_sites(program):
        positions = {}
        for field, kinds in FIELD_KINDS.items():
            if kind in kinds:
                positions[field] = counts.get(field, 0)
                counts[field] = positions[field] + 1
        out.append(Site(eqn.site, kind, pmap(positions), eqn.source, facts))
    return Sites(out)
