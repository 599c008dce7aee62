"""The rewrite pipeline: a flat list of named Program -> Program passes."""
from __future__ import annotations

import os
import sys

from ..config import Config
from ..trace.ir import Program
from .rewrites import cse as _cse, dce as _dce, fold as _fold
from .rewrites.reduction_loops import looped_reductions

PASSES: list = [("reduction_loops", looped_reductions), ("fold", _fold.fold), ("cse", _cse.cse),
                ("dce", _dce.dce)]


def rewrite(program: Program, config: Config) -> Program:
    """Run every pass in order; TILEFN_DUMP_PASSES=1 prints the program after each."""
    dump = os.environ.get("TILEFN_DUMP_PASSES") == "1"
    for name, fn in PASSES:
        program = fn(program, config)
        if dump:
            print(f"--- after {name} ---\n{program}", file=sys.stderr)
    return program
