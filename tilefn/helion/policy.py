"""Helion's rules for kernels that tilefn itself accepts, checked before a helion.kernel first runs.

tilefn runs a function without tile loops as host code, drops a loop whose body stores nothing, and
fills block sizes a Config leaves out with its defaults; Helion refuses all three, and so does its
front end here (with `helion.exc`'s NoDeviceLoopsInKernel, EmptyDeviceLoopAfterDCE, InvalidConfig).
"""
from __future__ import annotations

from ..errors import ConfigError, TilefnError
from ..lower.rewrites.dce import has_effect
from ..trace.primitives import kernel_p, loop_p


FIXED_NOTE = (" (tilefn's block_sizes also hold a slot for each loop with a fixed block_size=, in order; "
              "the value given there is ignored)")


class NoDeviceLoop(TilefnError):
    """A helion.kernel with no hl.tile / hl.grid loop: nothing would run on the device."""


class EmptyDeviceLoop(TilefnError):
    """A top-level device loop whose body has no effect (it stores nothing), so nothing is left of it."""


def check_program(program, config=None) -> None:
    """Raise Helion's error for a kernel without device loops, an empty device loop or too few block sizes."""
    kernels = [e for e in program.eqns if e.prim is kernel_p]
    if not kernels:
        raise NoDeviceLoop(f"{program.name} has no hl.tile / hl.grid loop, so no device code: a Helion kernel "
                           "computes inside `for tile in hl.tile(...)` loops (write plain PyTorch otherwise)")
    for loop in kernels[0].params["region"].eqns:
        if loop.prim is loop_p and not has_effect(loop):
            raise EmptyDeviceLoop("this device loop is empty after dead-code elimination: its body stores "
                                  "nothing into a tensor, so it computes nothing; store results with "
                                  "`out[tile] = ...`", source=loop.source)
    if config is not None and config.block_sizes:
        unset = [b for b in program.blocks[len(config.block_sizes):] if not b.fixed]
        if unset:
            wanted = len(config.block_sizes) + len(unset)
            raise ConfigError(f"Not enough values for config block_sizes: {program.name} expected {wanted} block "
                              f"sizes (one per hl.tile dimension and hl.register_block_size), got "
                              f"{len(config.block_sizes)}; give a block size for every hl.tile() dimension"
                              + FIXED_NOTE * any(b.fixed for b in program.blocks), source=None)


def check_kernel(jitted, args, config=None) -> None:
    """`check_program` on the Program `jitted` traces for `args` (under `config`'s tunables)."""
    tunables = config.tunables if config is not None else None
    check_program(jitted.trace_and_bind(args, {}, tunables)[0], config)
