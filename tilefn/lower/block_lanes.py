"""Values over blocks' full lanes inside a loop those blocks size (`tilefn.trace.block_lanes`).

In Triton the value already has the blocks' lanes, so a view is the value itself; a merge keeps the
old lanes where a tile's mask is off (a ragged edge tile), so they keep what earlier tiles left.
"""
from __future__ import annotations

from ..trace.types import lanes_dim
from .emit import Emitter


def lower_lanes_view(em: Emitter, eqn) -> None:
    em.assign(eqn.outputs[0], em(eqn.inputs[0]))


def lower_lanes_merge(em: Emitter, eqn) -> None:
    new, old = eqn.inputs
    shape = old.type.shape
    masks = {lanes_dim(d.block): em.dim_mask(d) for d in eqn.params["dims"]}
    lanes = [em.expand(masks[d], axis, len(shape)) for axis, d in enumerate(shape) if masks.get(d)]
    em.assign(eqn.outputs[0], f"tl.where({' & '.join(lanes)}, {em(new)}, {em(old)})" if lanes else em(new))
