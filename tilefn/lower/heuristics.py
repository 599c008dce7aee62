"""The default Config of a Program: good block sizes and warps without tuning."""
from __future__ import annotations

import math

import attrs

from ..config import Config
from ..trace.ir import Program, walk_eqns
from ..trace.primitives import dot_p
from ..trace.types import TileDim

TILE_ELEMENTS = 4096  # elements per program for memory-bound kernels
LONG_ROW, ROW_CHUNK = 16384, 8192  # whole-row reductions wider than LONG_ROW loop over ROW_CHUNK


def next_power_of_2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def kernel_eqns(program: Program):
    kernel = program.kernel
    return list(walk_eqns(kernel.params["region"].eqns)) if kernel is not None else []


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


def _grid_blocks(program: Program) -> list[int]:
    """Block ids of the outermost (grid) loops, outermost dimension first."""
    from .loops_info import grid_loops

    return [dim.block for loop in grid_loops(program) for kind, dim in loop.params["dims"] if kind == "tile"]


def _clamp(size: int, extent: int | None) -> int:
    return max(1, min(size, next_power_of_2(extent) if extent else size))


def default_config(program: Program) -> Config:
    eqns = kernel_eqns(program)
    roles = dot_roles(eqns)
    grid = _grid_blocks(program)
    sizes = [1] * len(program.blocks)
    for block in program.blocks:  # sequential (inner loop) dimensions first
        if block.id not in grid and block.id not in roles and not block.fixed:
            sizes[block.id] = _clamp(1024, block.extent)
    # what one program holds with grid blocks of 1 (whole rows, inner tiles) sets the grid budget
    budget = max(1, TILE_ELEMENTS // largest_value(eqns, Config(block_sizes=sizes)))
    for block_id in reversed(grid):  # the innermost grid dimension gets the budget first
        block = program.blocks[block_id]
        if block_id in roles or block.fixed:
            continue
        sizes[block_id] = _clamp(budget, block.extent)
        budget = max(1, budget // sizes[block_id])
    for block in program.blocks:
        if block.fixed:
            sizes[block.id] = block.fixed
        elif block.id in roles:
            want = {"m": 128, "n": 128, "k": 64, "batch": 1}[roles[block.id]]
            sizes[block.id] = max(_clamp(want, block.extent), 16 if roles[block.id] != "batch" else 1)
    config = Config(block_sizes=sizes)
    elements = largest_value(eqns, config)
    if roles:
        warps, stages = (8, 3) if elements >= 128 * 128 else (4, 3)
    else:
        warps, stages = max(1, min(32, next_power_of_2(max(elements // 1024, 1)))), 1
    looped = _looped_rows(program)
    if any(looped):
        config, warps = attrs.evolve(config, reduction_loops=looped), 16
    return attrs.evolve(config, num_warps=warps, num_stages=stages)


def _looped_rows(program: Program) -> list:
    """Rows wider than LONG_ROW are reduced in chunks (H100: cross_entropy over 32768 columns ran
    0.258 ms whole and 0.222 ms in chunks of 8192 with 16 warps; rows of 16384 or less ran best whole)."""
    from .rewrites.reduction_loops import reduction_extents

    return [ROW_CHUNK if next_power_of_2(n) > LONG_ROW else None for n in reduction_extents(program)]


def largest_value(eqns, config) -> int:
    """Elements of the largest value in the kernel under `config`'s block sizes."""
    largest = 1
    for eqn in eqns:
        for var in eqn.outputs:
            shape = getattr(var.type, "shape", ())
            lanes = [config.block_sizes[d.block] if isinstance(d, TileDim) else next_power_of_2(d) for d in shape]
            largest = max(largest, math.prod(lanes) if lanes else 1)
    return largest


def complete_config(program: Program, config: Config | None) -> Config:
    """`config` with the knobs it leaves unset taken from the default."""
    default = default_config(program)
    if config is None:
        return default
    sizes = list(config.block_sizes) + list(default.block_sizes[len(config.block_sizes):])
    for block in program.blocks:
        if block.fixed:
            sizes[block.id] = block.fixed
    return attrs.evolve(config, block_sizes=sizes,
                        num_warps=config.num_warps or default.num_warps,
                        num_stages=config.num_stages or default.num_stages)
