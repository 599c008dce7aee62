"""Mask elimination: which tile dimensions need a bounds mask under a given Config."""
from __future__ import annotations

import attrs

from ..trace.ir import Lit, walk_eqns
from ..trace.primitives import loop_p
from ..trace.sizes import is_symbolic


@attrs.frozen
class TileBounds:
    begin: int | None  # None when only known on the device
    end: int | None
    block: int


@attrs.frozen
class MaskInfo:
    """Static bounds of every tile of a program, to decide where masks are provably unneeded."""

    bounds: dict  # tile number -> TileBounds

    def needs_mask(self, dim, config) -> bool:
        b = self.bounds[dim.tile]
        if b.begin is None or b.end is None:
            return True
        return (b.end - b.begin) % config.block_sizes[dim.block] != 0


def analyze_masks(program) -> MaskInfo:
    bounds = {}
    kernel = program.kernel
    if kernel is None:
        return MaskInfo({})
    for eqn in walk_eqns(kernel.params["region"].eqns):
        if eqn.prim is not loop_p:
            continue
        for i, (kind, dim) in enumerate(eqn.params["dims"]):
            if kind != "tile":
                continue
            begin, end = eqn.inputs[2 * i], eqn.inputs[2 * i + 1]
            # (a symbolic size, static_shapes=False, is known only at launch: masked whatever it divides)
            static = lambda a: a.value if isinstance(a, Lit) and not is_symbolic(a.value) else None  # noqa: E731
            bounds[dim.tile] = TileBounds(static(begin), static(end), dim.block)
    return MaskInfo(bounds)
