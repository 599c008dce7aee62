"""The rewrite pipeline: a flat list of named Program -> Program passes."""
from __future__ import annotations

import sys

from ..config import Config
from ..settings import Settings
from ..trace.ir import Program
from .rewrites import cse as _cse, dce as _dce, fold as _fold
from .rewrites.reduction_loops import looped_reductions

PASSES: list = [("reduction_loops", looped_reductions), ("fold", _fold.fold), ("cse", _cse.cse),
                ("dce", _dce.dce)]


def rewrite(program: Program, config: Config, settings: Settings | None = None) -> Program:
    """Run every pass in order; `settings.dump_passes` (TILEFN_DUMP_PASSES=1) prints the program after each."""
    dump = (settings if settings is not None else Settings.from_env()).dump_passes
    for name, fn in PASSES:
        program = fn(program, config)
        if dump:
            print(f"--- after {name} ---\n{program}", file=sys.stderr)
    return program
