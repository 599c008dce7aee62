"""Lowering rules that rearrange lanes: stack (a tree of tl.join), concat (gathers), split (tl.split) and flip."""
from __future__ import annotations

from ..trace.queries import next_power_of_2
from ..trace.types import TileDim
from .emit import Emitter


def lower_stack(em: Emitter, eqn) -> None:
    """n values along a new last axis: joined in pairs, as many levels as log2 of n's power of two (the
    padding lanes of a non-power-of-two n are zeros, masked off as any static dim's are)."""
    values = [em(x) for x in eqn.inputs]
    base = list(eqn.inputs[0].type.shape)
    if len(values) == 1:
        em.assign(eqn.outputs[0], f"tl.expand_dims({values[0]}, {len(base)})")
        return
    values += [f"tl.zeros_like({values[0]})"] * (next_power_of_2(len(values)) - len(values))
    em.assign(eqn.outputs[0], _joined(em, values, base))


def _joined(em: Emitter, values: list[str], base: list) -> str:
    """values[j] at lane j of a new last axis: join(evens, odds) holds values[2i + p] at [i, p]."""
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return f"tl.join({values[0]}, {values[1]})"
    evens, odds = (_named(em, _joined(em, half, base)) for half in (values[0::2], values[1::2]))
    return f"tl.reshape(tl.join({evens}, {odds}), {em.shape_expr(base)[:-1]}, {len(values)}])"


def _named(em: Emitter, expr: str) -> str:
    if expr.isidentifier():
        return expr
    name = em.fresh("joined")
    em.emit(f"{name} = {expr}")
    return name


def lower_split(em: Emitter, eqn) -> None:
    low, high = (em(v) for v in eqn.outputs)
    em.emit(f"{low}, {high} = tl.split({em(eqn.inputs[0])})")


def lower_concat(em: Emitter, eqn) -> None:
    """Pieces of different static sizes along `axis`: lane j of the output gathers lane j - start of each
    piece (clamped into it), and the piece whose range holds j is selected. (Pieces of one size are a
    stack and a reshape instead: tl.join.)"""
    axis, shape = eqn.params["axis"], eqn.outputs[0].type.shape
    rank = len(shape)
    lanes = em.fresh("cat_lanes")
    em.emit(f"{lanes} = tl.arange(0, {em.dim_expr(shape[axis])})")
    gathered, start = [], 0
    for x in eqn.inputs:
        size = x.type.shape[axis]
        index_shape = [shape[axis] if i == axis else d for i, d in enumerate(x.type.shape)]
        index = em.expand(f"tl.minimum(tl.maximum({lanes} - {start}, 0), {size - 1})", axis, rank)
        piece = em.fresh("cat_piece")
        em.emit(f"{piece} = tl.gather({em(x)}, tl.broadcast_to({index}, {em.shape_expr(index_shape)}), {axis})")
        gathered.append((start, piece))
        start += size
    expr = gathered[-1][1]
    for (_, piece), (end, _) in zip(reversed(gathered[:-1]), reversed(gathered[1:])):
        expr = f"tl.where({em.expand(f'({lanes} < {end})', axis, rank)}, {piece}, {expr})"
    em.assign(eqn.outputs[0], expr)


def lower_flip(em: Emitter, eqn) -> None:
    """tl.flip when every lane is valid; else a gather of lane n-1-i (n valid lanes), so the valid
    elements are reversed in place and the padding stays at the end."""
    (x,) = eqn.inputs
    axis, shape = eqn.params["axis"], x.type.shape
    dim = shape[axis]
    if em.dim_mask(dim) is None:
        em.assign(eqn.outputs[0], f"tl.flip({em(x)}, {axis})")
        return
    if isinstance(dim, TileDim):
        name = em.tiles[dim.tile]
        valid = f"tl.minimum({em.tile_ends[dim.tile]} - off_{name}, {em.dim_expr(dim)})"
    else:
        valid = str(dim)
    lanes = em.fresh("flipped_lanes")
    em.emit(f"{lanes} = tl.maximum({valid} - 1 - tl.arange(0, {em.dim_expr(dim)}), 0)")
    index = f"tl.broadcast_to({em.expand(lanes, axis, len(shape))}, {em.shape_expr(shape)})"
    em.assign(eqn.outputs[0], f"tl.gather({em(x)}, {index}, {axis})")
