"""Deferred scatters: the transpose of a gather (a load through index tensors computed from data) whose
tensor is a view of one the kernel also reads another way (cross-entropy's `flat_logits[row * v +
label]` beside `logits[tn, :]`), without a gradient buffer of the whole gathered tensor.

The backward kernel writes each gathered lane's cotangent and its flat position in the gathered tensor
into two small buffers shaped like the gather (one slot per program, lane and iteration: every enclosing
tile is among the gather's dims), and a host call after the kernel adds them into the gradient buffer the
base tensor has anyway, seen through the same views (`ScatterGathered`). Repeated positions add up. A
half-precision gradient (one plain store of the input's dtype) gets each element's values summed in
float32 and added to it once, rounded once; others accumulate in their own dtype, as atomics would.
Gathers that do not fit (a tile missing from the gather's dims, a tensor no view of another the kernel
reads: an embedding table) keep `memory`'s atomic adds. A gather from its program's own rows is fused into
the rows' cotangent instead (`row_fusion`): only its lanes outside the row reach the slots (`AddStray`)."""
from __future__ import annotations

import math
from collections import Counter

import attrs
import torch

from ..trace import primitives as p
from ..trace.host import evaluate_host
from ..trace.ir import Var
from ..trace.naming import op_name
from ..trace.types import TileDim, contiguous_strides
from .builder import cotangent_dtype
from .host import buffer_eqn, contiguous, host_call
from .memory import access_parts, tile_range_end, tiled_loads
from .row_fusion import RowFusion, fuse, plan_fusion

VIEWS = frozenset({  # host calls of one tensor giving a view of it (each element seen once) on a contiguous buffer
    "view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "permute", "transpose", "t", "movedim",
    "narrow", "select", "__getitem__", "contiguous"})
POINT_ENTRIES = ("gather", "point")  # index entries naming one element per lane through an index tensor


@attrs.frozen(eq=False)
class Deferred:
    """One gather's deferred scatter: the gathered `tensor`, the `base` whose gradient takes it through the
    host views `chain` (base -> tensor), and the host buffers of its lanes' `values` and flat `positions`."""

    tensor: Var
    base: Var
    chain: tuple
    values: Var
    positions: Var
    fusion: RowFusion | None = None  # the lanes within their program's own rows, fused (`row_fusion`)

    def scatter(self):
        """The host call adding the slots into the gradient: the sorting one, or for the stray lanes of a
        fused gather, `AddStray`."""
        return (ScatterGathered if self.fusion is None else AddStray)(self.base, self.chain)


@attrs.frozen
class Deferrals:
    """The kernel's deferred gathers (their load's result -> `Deferred`) and those the backward wrote."""

    plans: dict
    written: list = attrs.field(factory=list)

    def plan_of(self, eqn, copies: dict) -> Deferred | None:
        """The plan of load `eqn`, or of the forward load it copies (an inner loop run again)."""
        var = eqn.outputs[0]
        while var not in self.plans and var in copies:
            var = copies[var]
        return self.plans.get(var)

    def remaining(self, loads: Counter) -> Counter:
        """`loads` (load equations per tensor) less the deferred ones."""
        return loads - Counter(d.tensor for d in self.plans.values())

    def transpose(self, b, eqn, ct, tiles, plan: Deferred, grads: dict, env: dict) -> None:
        """Write the cotangent `ct` of gather `eqn` and its positions into `plan`'s buffers (a fused gather's
        in-row lanes into the row's cotangent in `env` instead)."""
        if plan.base not in grads:
            return
        if plan.fusion is not None and eqn.outputs[0] in self.plans:  # (not a copy run in an inner loop)
            ct = fuse(b, plan.fusion, ct, env)
            if ct is None:
                return
        index, _, mask = access_parts(eqn)
        position = b.convert(_flat_position(b, eqn, index), plan.positions.type.dtype)
        value = b.convert(ct, plan.values.type.dtype)
        if mask is not None:  # (lanes outside the tensor read 0: they add 0 at position 0)
            position, value = b.where(mask, position, 0), b.where(mask, value, 0.0)
        slots, entries = [], []
        for d in eqn.outputs[0].type.shape:
            tile = next((t for t in tiles if isinstance(d, TileDim) and t.type.dim == d), None)
            slots += [tile] if tile is not None else []
            entries.append(("tile",) if tile is not None else ("slice", 0, d))
        for buffer, written in ((plan.values, value), (plan.positions, position)):
            b.emit(p.store_p, buffer, *slots, written, index=tuple(entries), masked=False)
        if plan not in self.written:
            self.written.append(plan)


def _flat_position(b, eqn, index):
    """The position (int64), in the gathered tensor's row-major order, of each lane of gather `eqn`."""
    operands, total, offset = iter(index), None, 0
    for entry, stride in zip(eqn.params["index"], contiguous_strides(eqn.inputs[0].type.shape)):
        if entry[0] == "int":
            offset += entry[1] * stride
            continue
        term = b.convert(next(operands), torch.int64)
        term = term if stride == 1 else b.mul(term, stride)
        total = term if total is None else b.add(total, term)
    total = total if offset == 0 else b.add(total, offset)
    return b.broadcast(total, eqn.outputs[0].type.shape)


def plan_deferrals(kernel, before) -> Deferrals:
    """The gathers of `kernel` whose transpose is deferred: each lane has a slot of its own, and the
    gathered tensor is the base itself or a view of it (host calls in `before`) that the kernel reads
    through another load too."""
    candidates, direct = [], set()
    loads, bounds = tiled_loads(kernel)
    for eqn, tiles in loads:
        extents = _slot_extents(eqn, tiles, bounds)
        if extents is None:
            direct.add(eqn.inputs[0])
        else:
            candidates.append((eqn, extents))
    producers = {v: e for e in before if e.prim is p.host_p for v in e.outputs}
    plans = {}
    for eqn, extents in candidates:
        tensor = eqn.inputs[0]
        found = _view_chain(tensor, direct, producers)
        if found is not None and tensor.type.dtype.is_floating_point:
            device = tensor.type.device
            values = Var(contiguous(extents, cotangent_dtype(tensor.type.dtype), device))
            positions = Var(contiguous(extents, _position_dtype(tensor), device))
            plans[eqn.outputs[0]] = Deferred(tensor, *found, values, positions, plan_fusion(kernel, eqn, found[0]))
    return Deferrals(plans)


def _position_dtype(tensor):
    """int32 positions where the tensor's elements are numbered in 31 bits (on CUDA the host's sort of them
    then takes half the radix passes of int64 keys), else int64."""
    return torch.int32 if math.prod(tensor.type.shape) <= torch.iinfo(torch.int32).max else torch.int64


def _slot_extents(eqn, tiles, bounds) -> list | None:
    """The buffer shape giving each (program, lane, iteration) of gather `eqn` a slot of its own (its
    result's dims: tiles of ranges from 0, sizes), or None where it is no such gather."""
    entries, shape = eqn.params["index"], tuple(eqn.outputs[0].type.shape)
    kinds = {entry[0] for entry in entries}
    if not kinds & set(POINT_ENTRIES) or not kinds <= {*POINT_ENTRIES, "scalar", "int"}:
        return None
    operands = iter(access_parts(eqn)[0])
    for entry in entries:
        if entry[0] != "int" and tuple(next(operands).type.shape) not in (shape, ()):
            return None
    extents, used = [], []
    for d in shape:
        tile = next((t for t in tiles if isinstance(d, TileDim) and t.type.dim == d), None)
        end = tile_range_end(*bounds[tile]) if tile is not None and not any(tile is u for u in used) else d
        if not isinstance(end, int) or (isinstance(d, TileDim) and tile is None):
            return None
        extents.append(end)
        used += [tile] if tile is not None else []
    return extents if all(any(t is u for u in used) for t in tiles) else None


def _view_chain(tensor, direct: set, producers: dict):
    """(base, host views from it to `tensor`) where `tensor` is, through views alone, one the kernel reads
    by another load (else None)."""
    chain, current = [], tensor
    while current not in direct:
        eqn = producers.get(current)
        sources = [x for x in eqn.inputs if isinstance(x, Var)] if eqn is not None else []
        if eqn is None or len(sources) != 1 or len(eqn.outputs) != 1 or op_name(eqn.params["fn"]) not in VIEWS:
            return None
        chain.insert(0, eqn)
        current = sources[0]
    return (current, tuple(chain)) if _aliases(current, chain) else None


def _aliases(base, chain) -> bool:
    """Whether `chain` applied to a contiguous tensor of `base`'s type gives a view of it (not a copy)."""
    try:
        start = torch.empty(base.type.shape, dtype=base.type.dtype, device="meta")
        end = ScatterGathered(base, chain).view_of(start)
    except (TypeError, ValueError, RuntimeError):  # (a symbolic size: no deferral)
        return False
    return end is start or end._base is start


def scatter_deferred(deferrals: Deferrals, kernel, grads: dict, eqns: list, hints: dict) -> None:
    """Allocate the slots of each gather the backward `kernel` wrote (unfilled: it writes every one) before
    it, and after it add them into the base's gradient (which `grads` then names)."""
    for plan in deferrals.written:
        name, at = hints.get(plan.tensor, "gathered"), eqns.index(kernel)
        for buffer, what in ((plan.values, f"grad_{name}_values"), (plan.positions, f"{name}_positions")):
            eqns.insert(at, buffer_eqn(buffer.type, buffer.type.dtype, out=buffer, zeroed=False))
            hints[buffer] = what
        grad = grads[plan.base]
        call = host_call(plan.scatter(), (grad, plan.positions, plan.values), grad.type)
        eqns.append(call)
        grads[plan.base] = call.outputs[0]
        hints[call.outputs[0]] = hints.get(grad, "grad")


class ScatterGathered:
    """`fn(gradient, positions, values) -> gradient`: adds `values` in place into `gradient` seen through
    the host views `chain`, at the row-major `positions` of that view (repeats add up)."""

    printed_as_call = True  # the printer writes `name(args)`
    __name__ = "scatter_gathered"

    def __init__(self, base, chain):
        self.base, self.chain = base, tuple(chain)

    def view_of(self, gradient):
        env = {self.base: gradient}
        for eqn in self.chain:
            env.update(zip(eqn.outputs, evaluate_host(eqn, env)))
        return env[self.chain[-1].outputs[0]] if self.chain else gradient

    def __call__(self, gradient, positions, values):
        add_at(self.view_of(gradient), positions.reshape(-1), values.reshape(-1))
        return gradient


class AddStray(ScatterGathered):
    """`ScatterGathered` by one `index_add_` in the gradient's dtype: for the stray lanes of a fused gather
    (`row_fusion`), zero but where a column lies outside its row, so no sort to sum repeats first."""

    __name__ = "add_stray"

    def __call__(self, gradient, positions, values):
        self.view_of(gradient).index_add_(0, positions.reshape(-1), values.reshape(-1).to(gradient.dtype))
        return gradient


def add_at(target, positions, values) -> None:
    """`target`'s elements at row-major `positions` += `values`, repeats summed. A target of another dtype
    (half precision, values float32): each element's values summed in float32, added once, rounded once.
    (No host sync: the kernel before it stays queued.)"""
    at = _unravel(positions, target.shape)
    if values.dtype == target.dtype:
        target.index_put_(at, values, accumulate=True)
        return
    first = torch.searchsorted(positions.sort().values, positions)  # (one slot per distinct position)
    sums = torch.zeros_like(values).index_add_(0, first, values)
    target.index_put_(at, (target[at].to(values.dtype) + sums[first]).to(target.dtype))  # (repeats: one value)


def _unravel(positions, shape) -> tuple:
    """Row-major `positions` as one index tensor per axis of `shape` (Python-int arithmetic:
    `torch.unravel_index` copies the shape to the device, a sync)."""
    if len(shape) == 1:
        return (positions,)
    strides = contiguous_strides(shape)
    return tuple(positions // stride % size for stride, size in zip(strides, shape))
