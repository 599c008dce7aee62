"""Questions about a Program's structure: its kernel's equations, loops, matrix-product blocks, sizes.

Which loops the per-loop Config lists index (for sizing them: the tuner's ConfigSpec):

- `loop_orders` and `l2_groupings`: one entry per `ordered_loops(program)` (top-level loops of
  two or more dimensions, in program order).
- `range_*` and `static_ranges`: one entry per `inner_loops(program)` (loops nested in a
  top-level loop, depth first, in program order).

Indices refer to the program code generation sees, i.e. after the rewrites
(`tilefn.lower.passes.rewrite(program, config)`): a `reduction_loops` chunk loop is an inner
loop too, at the position of the reduction it replaces.
"""
from __future__ import annotations

import math

from .ir import Eqn, Program, regions, walk_eqns
from .primitives import dot_p, loop_p
from .types import TileDim


def next_power_of_2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def kernel_eqns(program: Program):
    """Every equation inside the kernel, nested loop bodies included (none without a kernel)."""
    kernel = program.kernel
    return list(walk_eqns(kernel.params["region"].eqns)) if kernel is not None else []


def used_vars(program: Program) -> frozenset:
    """The kernel's Vars that some equation or loop body reads (an atomic's unread old value is not)."""
    used = set()
    for eqn in kernel_eqns(program):
        used.update(eqn.inputs)
        for region in regions(eqn):
            used.update(region.results)
    return frozenset(used)


def readers(program: Program) -> dict:
    """Var -> the kernel's equations that take it as an input, in program order."""
    found: dict = {}
    for eqn in kernel_eqns(program):
        for atom in eqn.inputs:
            found.setdefault(atom, []).append(eqn)
    return found


def producers(program: Program) -> dict:
    """Var -> the kernel's equation that makes it."""
    return {out: eqn for eqn in kernel_eqns(program) for out in eqn.outputs}


def dot_roles(eqns) -> dict[int, str]:
    """block id -> "m", "n", "k" or "batch" for the blocks that tile matrix-product operands."""
    roles = {}
    for eqn in eqns:
        if eqn.prim is not dot_p:
            continue
        a, b = eqn.inputs[0].type.shape, eqn.inputs[1].type.shape
        named = {a[-2]: "m", b[-1]: "n", a[-1]: "k"}
        for dim in a[:-2]:
            named.setdefault(dim, "batch")
        for dim, role in named.items():
            if isinstance(dim, TileDim):
                roles.setdefault(dim.block, role)
    return roles


def tile_lanes(shape, config) -> list[int]:
    """The lanes of each dim of `shape` under `config`'s block sizes (a static dim: its power of two)."""
    return [config.block_sizes[d.block] if isinstance(d, TileDim) else next_power_of_2(d) for d in shape]


def largest_value(eqns, config) -> int:
    """Elements of the largest value in the kernel under `config`'s block sizes."""
    largest = 1
    for eqn in eqns:
        for var in eqn.outputs:
            largest = max(largest, math.prod(tile_lanes(getattr(var.type, "shape", ()), config)))
    return largest


def grid_loops(program) -> list:
    """The top-level (grid) `loop` equations, in order."""
    kernel = program.kernel
    return list(kernel.params["region"].eqns) if kernel is not None else []


def grid_blocks(program: Program) -> list[int]:
    """Block ids of the outermost (grid) loops, outermost dimension first, and of the loops that walk one
    program's chunk of a grid's rows (`chunk`: the backward's, `autodiff/chunks.py`)."""
    loops = grid_loops(program)
    chunks = [e for loop in loops for e in walk_eqns(loop.params["region"].eqns)
              if e.prim is loop_p and e.params.get("chunk")]
    return [dim.block for loop in loops + chunks for kind, dim in loop.params["dims"] if kind == "tile"]


def ordered_loops(program) -> list:
    """Top-level loops with more than one dimension: `loop_orders[i]` / `l2_groupings[i]` apply to the i-th."""
    return [loop for loop in grid_loops(program) if len(loop.params["dims"]) > 1]


def inner_loops(program) -> list:
    """Nested `loop` equations, depth first: `range_*[i]` / `static_ranges[i]` apply to the i-th."""
    return [eqn for loop in grid_loops(program) for eqn in walk_eqns(loop.params["region"].eqns)
            if eqn.prim is loop_p and not eqn.params["grid"]]


def phase_of(loop: Eqn) -> int:
    """The phase of a top-level loop: how many tl.barrier()s come before it (each phase is a launch)."""
    return loop.params.get("phase", 0)
