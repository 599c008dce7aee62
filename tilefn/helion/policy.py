"""Helion's rules for kernels that tilefn itself accepts, checked before a helion.kernel first runs.

tilefn runs a function without tile loops as host code, drops a loop whose body stores nothing, and
fills block sizes a Config leaves out with its defaults; Helion refuses all three, and so does its
front end here (with `helion.exc`'s NoDeviceLoopsInKernel, EmptyDeviceLoopAfterDCE, InvalidConfig).
A Helion Config's block sizes skip loops with a fixed block size; they are put in tilefn's slots here.
"""
from __future__ import annotations

import attrs

from ..config import Config as TfnConfig
from ..errors import ConfigError, TilefnError
from ..lower.rewrites.dce import has_effect
from ..trace.primitives import kernel_p, loop_p
from .config import Config


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


def check_kernel(jitted, args, config=None):
    """`check_program` on the Program `jitted` traces for `args` (under `config`'s tunables); returns
    `config` with its block sizes in tilefn's slots (`helion_block_sizes`)."""
    program = jitted.trace_and_bind(args, {}, config.tunables if config is not None else None,
                                    config.block_sizes if config is not None else None)[0]
    check_program(program)
    return helion_block_sizes(program, config)
