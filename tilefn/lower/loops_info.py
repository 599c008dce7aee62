"""Which loops the per-loop Config lists index (for sizing them: the tuner's ConfigSpec).

- `loop_orders` and `l2_groupings`: one entry per `ordered_loops(program)` (top-level loops of
  two or more dimensions, in program order).
- `range_*` and `static_ranges`: one entry per `inner_loops(program)` (loops nested in a
  top-level loop, depth first, in program order).

Indices refer to the program code generation sees, i.e. after the rewrites
(`tilefn.lower.passes.rewrite(program, config)`): a `reduction_loops` chunk loop is an inner
loop too, at the position of the reduction it replaces.
"""
from __future__ import annotations

from ..trace.ir import walk_eqns
from ..trace.primitives import loop_p


def grid_loops(program) -> list:
    """The top-level (grid) `loop` equations, in order."""
    kernel = program.kernel
    return list(kernel.params["region"].eqns) if kernel is not None else []


def ordered_loops(program) -> list:
    """Top-level loops with more than one dimension: `loop_orders[i]` / `l2_groupings[i]` apply to the i-th."""
    return [loop for loop in grid_loops(program) if len(loop.params["dims"]) > 1]


def inner_loops(program) -> list:
    """Nested `loop` equations, depth first: `range_*[i]` / `static_ranges[i]` apply to the i-th."""
    return [eqn for loop in grid_loops(program) for eqn in walk_eqns(loop.params["region"].eqns)
            if eqn.prim is loop_p and not eqn.params["grid"]]
