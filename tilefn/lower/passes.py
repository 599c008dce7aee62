"""The rewrite pipeline: flat lists of named Program -> Program passes.

`canonical` runs the Config-independent passes (what knob sites are computed on); `rewrite`
then applies the Config (looped reductions) and cleans up after it.
"""
from __future__ import annotations

import sys

from ..config import Config
from ..settings import Settings
from ..trace.ir import Program
from .rewrites import cse as _cse, dce as _dce, fold as _fold
from .rewrites.reduction_loops import looped_reductions
from .rewrites.scaled_max import scaled_max

CANONICAL: list = [("fold", _fold.fold), ("cse", _cse.cse), ("dce", _dce.dce)]
# scaled_max after reduction_loops: online_rescale finds the max directly under its shift
CONFIGURED: list = [("reduction_loops", looped_reductions), ("scaled_max", scaled_max), *CANONICAL]


def run_passes(passes, program: Program, config: Config | None, settings: Settings | None = None) -> Program:
    """Run `passes` in order; `settings.dump_passes` (TILEFN_DUMP_PASSES=1) prints the program after each."""
    dump = (settings if settings is not None else Settings.from_env()).dump_passes
    for name, fn in passes:
        program = fn(program, config)
        if dump:
            print(f"--- after {name} ---\n{program}", file=sys.stderr)
    return program


def canonical(program: Program, settings: Settings | None = None) -> Program:
    """`program` with its Config-independent rewrites applied (constant folding, CSE, DCE)."""
    return run_passes(CANONICAL, program, None, settings)


def rewrite(program: Program, config: Config, settings: Settings | None = None) -> Program:
    """Every pass in order, from the canonical form."""
    return run_passes(CONFIGURED, canonical(program, settings), config, settings)
