"""Shared memory the matrix products of a kernel need under a Config, estimated from the Program.

The model (it reproduces the bytes Triton 3.6 allocates on sm_90 for matmul, the attention forward and its
derived backward): per inner loop, each distinct value a product reads from shared memory counts its tile's
bytes once, times the loop's num_stages where it is loaded in that loop's body (the software pipeline keeps
that many copies in flight). A loaded operand is read from shared memory; a computed one only where it is
the right operand (wgmma reads B from shared memory) or a transposed left one (the transpose goes through
shared memory); a plain computed left operand stays in registers. The loops' values are not live at once,
so the kernel needs the most any one loop needs.
"""
from __future__ import annotations

import math

import attrs

from ..trace.ir import Eqn, Program, Var, regions
from ..trace.primitives import dot_p, load_p, loop_p, permute_p
from ..trace.queries import inner_loops, tile_lanes
from ..trace.types import TileDim

MAX_SHARED_BYTES = 232448  # 227 KB: an H100/H200 block's shared memory (A100: 163 KB; smaller GPUs fail)


@attrs.frozen
class DotOperand:
    """A value some matrix product reads from shared memory: its tile, and the inner loop it belongs to."""

    source: Var  # the loaded or computed value (a transposed view's source)
    loop: Eqn | None  # the inner loop whose body holds the product (None: no inner loop)
    pipelined: bool  # loaded in that loop's body: num_stages copies


def dot_operands(program: Program) -> list[DotOperand]:
    """Every value the kernel's matrix products read from shared memory, once per inner loop."""
    kernel = program.kernel
    if kernel is None:
        return []
    made_by, home, dots = {}, {}, []
    _walk(kernel.params["region"].eqns, None, made_by, home, dots)
    found = {}
    for dot, loop in dots:
        for position, operand in enumerate(dot.inputs[:2]):
            source, transposed = operand, False
            while source in made_by and made_by[source].prim is permute_p:
                source, transposed = made_by[source].inputs[0], not transposed
            loaded = source in made_by and made_by[source].prim is load_p
            if loaded or position == 1 or transposed:
                pipelined = loaded and loop is not None and home[source] is loop
                found[(id(loop), source)] = DotOperand(source, loop, pipelined)
    return list(found.values())


def _walk(eqns, loop, made_by, home, dots) -> None:
    """Record each value's producer and inner loop, and each product with its inner loop."""
    for eqn in eqns:
        for out in eqn.outputs:
            made_by[out], home[out] = eqn, loop
        if eqn.prim is dot_p:
            dots.append((eqn, loop))
        inner = eqn if eqn.prim is loop_p and not eqn.params["grid"] else loop
        for region in regions(eqn):
            _walk(region.eqns, inner, made_by, home, dots)


def shared_bytes(program: Program, operands: list[DotOperand], config) -> int:
    """Bytes of shared memory `operands` (of `program`) need under `config` (complete block sizes)."""
    stages = _loop_stages(program, config)
    per_loop = {}
    for operand in operands:
        lanes = math.prod(tile_lanes(operand.source.type.shape, config))
        copies = stages.get(id(operand.loop), config.num_stages or 1) if operand.pipelined else 1
        key = id(operand.loop)
        per_loop[key] = per_loop.get(key, 0) + lanes * operand.source.type.dtype.itemsize * max(copies, 1)
    return max(per_loop.values(), default=0)


def pipelined_blocks(operands: list[DotOperand]) -> set[int]:
    """The blocks that size a pipelined operand (halving one saves num_stages copies)."""
    return {d.block for o in operands if o.pipelined for d in o.source.type.shape if isinstance(d, TileDim)}


def _loop_stages(program: Program, config) -> dict[int, int]:
    """id(inner loop) -> its own num_stages where the Config's range_num_stages sets one."""
    stages = {}
    for loop, value in zip(inner_loops(program), config.range_num_stages):
        if value:
            stages[id(loop)] = value
    return stages
