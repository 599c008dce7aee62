"""Row fusion: a gather from one of the rows its program also reads whole takes its cotangent inside the
kernel, added to that row's dense cotangent before the row's one store (no scatter after the kernel).

Cross-entropy reads `rows = logits[tn, :]` and gathers `flat_logits[tn.index * v + labels[tn]]`. Where
the IR proves that the gathered tensor is `logits` flattened (a view of it, one axis of its row-major
order), that the flat position is the tile's row index times the row's length `v` plus a column `col`,
and that the program loads the whole row `logits[tn, 0:v]` before the gather (so the reverse walk
transposes the gather first), the gather's cotangent `g` joins the row's:
`d_rows += where(arange(v) == col, g, 0)`. Two gathers of one row add up, as the loads' cotangents do.

A column is not known to lie in [0, v) (a label is data): lanes outside their row read some other row's
element (or 0, past the tensor), and torch's `cross_entropy` raises there. Those lanes keep the deferred
scatter (`deferred.py`), with `g` zeroed on the lanes fused here; its host step is one `index_add_` in
the gradient's dtype (`AddStray`), no sort, since stray lanes are rare. A column clamped into [0, v) by
`minimum` / `maximum` with literals (`labels[tn].clamp(0, v - 1)`) needs no host step at all."""
from __future__ import annotations

import math

import attrs
import torch

from ..trace import primitives as p
from ..trace.ir import Lit, Var
from ..trace.types import TensorType
from .builder import accumulate
from .memory import access_parts

INT32_MAX = torch.iinfo(torch.int32).max


@attrs.frozen(eq=False)
class RowFusion:
    """A gather fused into the dense cotangent of `dense` (the load of its program's whole rows of `width`
    columns) at column `column`; `in_row` where the IR proves every column lies in [0, width)."""

    dense: Var
    column: Var
    width: int
    in_row: bool


def plan_fusion(kernel, gather, base) -> RowFusion | None:
    """The fusion of `gather` (a load from a one-axis view of `base`, aliasing it: `deferred._view_chain`),
    or None where the IR does not prove the conditions of the module docstring."""
    shape, gathered = tuple(base.type.shape), gather.inputs[0].type.shape
    if len(shape) != 2 or not all(isinstance(s, int) for s in shape) or tuple(gathered) != (shape[0] * shape[1],):
        return None
    for loop in kernel.params["region"].eqns:
        region = loop.params.get("region")
        if loop.prim is p.loop_p and len(region.params) == 1 and any(e is gather for e in region.eqns):
            return _in_loop(region, gather, base, *shape)
    return None


def _in_loop(region, gather, base, n: int, v: int) -> RowFusion | None:
    """The fusion where `gather` sits in the body of the top-level tile loop `region` (its tile `tn`)."""
    tile = region.params[0]
    at = next(i for i, e in enumerate(region.eqns) if e is gather)
    dense = next((e for e in region.eqns[:at] if e.prim is p.load_p and e.inputs[0] is base and len(e.inputs) == 2
                  and e.inputs[1] is tile and not e.params["masked"]
                  and tuple(e.params["index"]) == (("tile",), ("slice", 0, v))), None)
    if dense is None or len(gather.params["index"]) != 1 or gather.outputs[0].type.shape != (tile.type.dim,):
        return None
    made = {o: e for e in region.eqns[:at] for o in e.outputs}
    column = _column(access_parts(gather)[0][0], made, tile, v, n)
    if column is None:
        return None
    return RowFusion(dense.outputs[0], column, v, _clamped(column, made, v))


def _column(position, made: dict, tile, v: int, n: int):
    """`col` where `position` is `tile_index(tile) * v + col` (either order), its product of a dtype that
    holds every position of the [n, v] tensor; else None."""
    add = made.get(position)
    if add is None or add.prim is not p.P["add"]:
        return None
    for row, col in (add.inputs, add.inputs[::-1]):
        mul = made.get(row)
        if mul is None or mul.prim is not p.P["mul"] or not isinstance(col, Var) or not _lanes_of(col, tile):
            continue
        factors = {type(x): x for x in mul.inputs}
        index = made.get(factors.get(Var))
        stride = factors.get(Lit)
        if (index is not None and index.prim is p.tile_index_p and index.inputs[0] is tile and stride is not None
                and stride.value == v and (mul.outputs[0].type.dtype == torch.int64 or n * v <= INT32_MAX)):
            return col
    return None


def _lanes_of(col, tile) -> bool:
    """An integer value with one lane per row of `tile`."""
    return (isinstance(col.type, TensorType) and not col.type.dtype.is_floating_point
            and tuple(col.type.shape) == (tile.type.dim,))


def _clamped(column, made: dict, v: int) -> bool:
    """Whether `column` is `minimum` / `maximum` with integer literals that keep it in [0, v) (its interval,
    walked from the innermost value out)."""
    bounds = []
    while column in made and made[column].prim in (p.P["minimum"], p.P["maximum"]):
        eqn = made[column]
        bound = next((x.value for x in eqn.inputs if isinstance(x, Lit) and isinstance(x.value, int)), None)
        column = next((x for x in eqn.inputs if isinstance(x, Var)), None)
        if bound is None or column is None:
            return False
        bounds.append((min if eqn.prim is p.P["minimum"] else max, bound))
    low, high = -math.inf, math.inf
    for op, bound in reversed(bounds):
        low, high = op(low, bound), op(high, bound)
    return 0 <= low and high < v


def fuse(b, fusion: RowFusion, ct, env: dict):
    """Add the gather's cotangent `ct` ([tn]) into the dense row cotangent in `env`; returns what the stray
    lanes (columns outside [0, width)) still owe the deferred scatter, or None where none can stray."""
    col = fusion.column
    shape = tuple(fusion.dense.type.shape)
    inside = b.op(p.P["logical_and"], b.op(p.P["ge"], col, 0), b.op(p.P["lt"], col, fusion.width))
    col32 = b.convert(b.where(inside, col, -1), torch.int32)
    columns = b.op(p.iota_p, start=0, stop=fusion.width, dtype=torch.int32)
    hit = b.op(p.P["eq"], b.broadcast(b.op(p.expand_dims_p, col32, axis=1), shape), b.broadcast(columns, shape))
    accumulate(b, env, fusion.dense, b.where(hit, b.broadcast(b.op(p.expand_dims_p, ct, axis=1), shape), 0.0))
    return None if fusion.in_row else b.where(inside, 0.0, ct)
