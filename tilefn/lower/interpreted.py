"""Vectorised forms of scans, combine reductions and sorts for Triton's CPU interpreter.

The interpreter runs `tl.associative_scan` and `tl.reduce` with a combine function (and `tl.sort`, built on
one) as a Python loop per element: seconds per tile. Under it, these forms emit the same results from
whole-tensor steps instead (the combine helper is elementwise, so it combines every lane at once): a
log-step scan over lanes fetched with `tl.gather`, a halving tree of `tl.split`s, a bitonic network of
`tl.gather` exchanges. The GPU keeps Triton's own ops.
"""
from __future__ import annotations

from .emit import Emitter


def _lanes_along(em: Emitter, shape, axis: int) -> str:
    """An int32 value of `shape` holding each lane's position along `axis`."""
    lanes = em.fresh("lane")
    arange = em.expand(f"tl.arange(0, {em.lanes(shape[axis])})", axis, len(shape))
    em.emit(f"{lanes} = tl.broadcast_to({arange}, {em.shape_expr(shape)})")
    return lanes


def _names(em: Emitter, exprs, base: str) -> list[str]:
    names = [em.fresh(base) for _ in exprs]
    for name, expr in zip(names, exprs):
        em.emit(f"{name} = {expr}")
    return names


def scan(em: Emitter, values: list[str], shape, axis: int, fn: str, reverse: bool) -> list[str]:
    """Inclusive scan by doubling steps: lane i combines (lane i - step, lane i) (reversed: i + step)."""
    n = em.lanes(shape[axis])
    lane, out, step = _lanes_along(em, shape, axis), _names(em, values, "scan"), 1
    while step < n:
        source, reach = _names(em, [f"tl.minimum({lane} + {step}, {n - 1})" if reverse else f"tl.maximum({lane} - {step}, 0)",
                                    f"{lane} < {n - step}" if reverse else f"{lane} >= {step}"], "reach")
        earlier = _names(em, [f"tl.gather({v}, {source}, {axis})" for v in out], "shifted")
        combined = [em.fresh("combined") for _ in out]
        em.emit(f"{', '.join(combined)}, = {fn}({', '.join(earlier + out)})")
        em.emit(f"{', '.join(out)} = {', '.join(f'tl.where({reach}, {c}, {v})' for c, v in zip(combined, out))}")
        step *= 2
    return out


def reduce(em: Emitter, values: list[str], shape, axis: int, fn: str, out_shape) -> list[str]:
    """Adjacent pairs combined by halving the reduced axis (moved last) until one lane is left."""
    rank, n = len(shape), em.lanes(shape[axis])
    perm = tuple(d for d in range(rank) if d != axis) + (axis,)
    rest = [em.dim_expr(shape[d]) for d in perm[:-1]]
    out = _names(em, [f"tl.permute({v}, {perm})" if perm != tuple(range(rank)) else v for v in values], "halving")
    while n > 1:
        n //= 2
        halves = [(em.fresh("even"), em.fresh("odd")) for _ in out]
        for (even, odd), v in zip(halves, out):
            em.emit(f"{even}, {odd} = tl.split(tl.reshape({v}, [{', '.join(rest + [str(n), '2'])}]))")
        em.emit(f"{', '.join(out)}, = {fn}({', '.join([e for e, _ in halves] + [o for _, o in halves])})")
    return [f"tl.reshape({v}, {em.shape_expr(out_shape)})" for v in out]


def sort_ascending(em: Emitter, keys: str, shape) -> str:
    """Distinct int64 keys sorted along the last axis by a bitonic network of lane exchanges."""
    axis, n = len(shape) - 1, em.lanes(shape[-1])
    lane, out = _lanes_along(em, shape, axis), em.fresh("bitonic")
    em.emit(f"{out} = {keys}")
    size = 2
    while size <= n:
        stride = size // 2
        while stride >= 1:
            other = em.fresh("partner")
            em.emit(f"{other} = tl.gather({out}, {lane} ^ {stride}, {axis})")
            keep_low = f"(({lane} & {stride}) == 0) == (({lane} & {size}) == 0)"  # the pair's low lane, in an ascending run
            em.emit(f"{out} = tl.where({keep_low}, tl.minimum({out}, {other}), tl.maximum({out}, {other}))")
            stride //= 2
        size *= 2
    return out


def first_lanes(em: Emitter, value: str, shape, k: int) -> str:
    """The first `k` lanes along the last axis of `value`."""
    rank = len(shape)
    index = em.expand(f"tl.arange(0, {k})", rank - 1, rank)
    target = "[" + ", ".join([em.dim_expr(d) for d in shape[:-1]] + [str(k)]) + "]"
    return f"tl.gather({value}, tl.broadcast_to({index}, {target}), {rank - 1})"
