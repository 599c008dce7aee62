"""Helion's rules for kernels that tilefn itself accepts, checked before a helion.kernel first runs.

tilefn runs a function without tile loops as host code, drops a loop whose body stores nothing, and
fills block sizes a Config leaves out with its defaults; Helion refuses all three, and so does its
front end here (with `helion.exc`'s NoDeviceLoopsInKernel, EmptyDeviceLoopAfterDCE, InvalidConfig).
A Helion Config's block sizes skip loops with a fixed block size, and its range_* lists hold an entry
per top-level loop and per inner-loop dimension; both are put in tilefn's slots here.
"""
from __future__ import annotations

import attrs

from ..config import Config as TfnConfig
from ..errors import ConfigError, TilefnError
from ..lower.config_check import PERSISTENT
from ..lower.passes import canonical
from ..lower.rewrites.dce import has_effect
from ..lower.sites import sites_of
from ..trace.ir import walk_eqns
from ..trace.primitives import kernel_p, loop_p
from ..trace.queries import grid_loops
from .config import Config

RANGE_FIELDS = ("range_unroll_factors", "range_num_stages", "range_multi_buffers", "range_flattens",
                "range_warp_specializes")
ACCESS_FIELDS = ("indexing", "load_eviction_policies", "atomic_indexing")


class NoDeviceLoop(TilefnError):
    """A helion.kernel with no hl.tile / hl.grid loop: nothing would run on the device."""


class EmptyDeviceLoop(TilefnError):
    """A top-level device loop whose body has no effect (it stores nothing), so nothing is left of it."""


def check_program(program) -> None:
    """Raise Helion's error for a kernel without device loops or with an empty device loop."""
    kernels = [e for e in program.eqns if e.prim is kernel_p]
    if not kernels:
        raise NoDeviceLoop(f"{program.name} has no hl.tile / hl.grid loop, so no device code: a Helion kernel "
                           "computes inside `for tile in hl.tile(...)` loops (write plain PyTorch otherwise)")
    for loop in kernels[0].params["region"].eqns:
        if loop.prim is loop_p and not has_effect(loop):
            raise EmptyDeviceLoop("this device loop is empty after dead-code elimination: its body stores "
                                  "nothing into a tensor, so it computes nothing; store results with "
                                  "`out[tile] = ...`", source=loop.source)


def helion_block_sizes(program, config):
    """`config` with its block sizes in tilefn's slots: a Helion Config lists one per block a Config
    chooses (loops with a fixed `block_size=` have none), tilefn's one per block symbol; too few is
    Helion's InvalidConfig (tilefn alone would fill them with defaults)."""
    if config is None or not config.block_sizes or len(config.block_sizes) >= len(program.blocks):
        return config
    free = [b for b in program.blocks if not b.fixed]
    if len(config.block_sizes) != len(free):
        raise ConfigError(f"Not enough values for config block_sizes: {program.name} expected {len(free)} block "
                          f"sizes (one per hl.tile dimension without a fixed block_size=, and per "
                          f"hl.register_block_size), got {len(config.block_sizes)}; give a block size for every "
                          "hl.tile() dimension", source=None)
    given = iter(config.block_sizes)
    sizes = [b.fixed if b.fixed else next(given) for b in program.blocks]
    fields = {f.name: getattr(config, f.name) for f in attrs.fields(TfnConfig)}
    return Config.of(TfnConfig(**{**fields, "block_sizes": sizes}))


PERSISTENT_SLOT = "persistent"  # a top-level loop's entry: the persistent loop's (`PERSISTENT_FIELDS`)
PERSISTENT_FIELDS = {"range_flattens": "persistent_flatten", "range_warp_specializes": "persistent_warp_specialize"}


def helion_range_slots(program) -> list:
    """For each entry of a Helion range_* list, the tilefn inner loop it configures (None: none).
    Helion lists an entry per top-level loop (its persistent range: PERSISTENT_SLOT) and one per
    dimension of each inner loop, in trace order; tilefn one per inner loop (its first dim's)."""
    slots, inner = [], 0
    for loop in grid_loops(program):
        slots.append(PERSISTENT_SLOT)
        for eqn in walk_eqns(loop.params["region"].eqns):
            if eqn.prim is loop_p:
                slots += [inner] + [None] * (len(eqn.params["dims"]) - 1)
                inner += 1
    return slots


def helion_lists(program, config):
    """`config` with Helion's per-loop and per-access lists in tilefn's slots: range_* lists longer than
    tilefn's inner loops are Helion's (`helion_range_slots`); access lists longer than tilefn's loads and
    stores (Helion counts each source access, tilefn merges repeated loads) lose their extra entries,
    which name accesses tilefn does not make."""
    if config is None:
        return config
    sites = None
    fields = {f.name: getattr(config, f.name) for f in attrs.fields(TfnConfig)}
    changed = {}
    for field in RANGE_FIELDS + ACCESS_FIELDS:
        values = fields[field]
        if not isinstance(values, (list, tuple)) or not values:
            continue
        if sites is None:
            sites = sites_of(canonical(program))
        count = len(sites.of_field(field))
        if len(values) <= count:
            continue
        if field in RANGE_FIELDS:
            slots = helion_range_slots(program)
            if len(values) <= len(slots):
                mine = [None] * count
                for slot, value in zip(slots, values):
                    if slot == PERSISTENT_SLOT:
                        if value and field in PERSISTENT_FIELDS and config.pid_type in PERSISTENT:
                            changed[PERSISTENT_FIELDS[field]] = True  # (Helion ignores it with other pid types)
                    elif slot is not None and slot < count:
                        mine[slot] = value
                changed[field] = _fill(field, mine)
        else:
            changed[field] = values[:count]
    return config if not changed else Config.of(TfnConfig(**{**fields, **changed}))


_RANGE_DEFAULTS = {"range_unroll_factors": 0, "range_num_stages": 0, "range_multi_buffers": None,
                   "range_flattens": None, "range_warp_specializes": None}


def _fill(field: str, values: list) -> list:
    """Entries Helion left out (a shorter list) take its defaults."""
    return [_RANGE_DEFAULTS[field] if v is None else v for v in values]


def check_kernel(jitted, args, config=None):
    """`check_program` on the Program `jitted` traces for `args` (under `config`'s tunables); returns
    `config` with its block sizes and lists in tilefn's slots (`helion_block_sizes`, `helion_lists`)."""
    program = jitted.trace_and_bind(args, {}, config.tunables if config is not None else None,
                                    config.block_sizes if config is not None else None)[0]
    check_program(program)
    return helion_lists(program, helion_block_sizes(program, config))
