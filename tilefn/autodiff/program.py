"""`vjp_program(forward, cotangent types)`: the backward Program of a traced forward Program.

Its inputs are the forward's (the primals) followed by one cotangent per tensor the forward returns;
its outputs, one gradient per forward input (None for integer tensors). Host code: the forward's host
equations the backward kernel needs (views of inputs), zero-filled gradient buffers (float32 for half
precision inputs), the pullbacks of host code after and before the kernel where there is any
(`host.py`), and one backward kernel (`kernel.py`); the forward values the backward does not read
are dropped (DCE), so the printed program shows only what runs.
"""
from __future__ import annotations

import itertools
from collections import Counter

import attrs
import torch

from ..errors import ArgumentError, ConfigError, UnsupportedOp
from ..lower.rewrites.dce import dce
from ..trace import primitives as p
from ..trace.host_blocks import HOST_DEFAULT
from ..trace.ir import Program, Tunable, Var, walk_eqns
from ..trace.queries import next_power_of_2
from ..trace.types import HostType, TensorType
from .builder import cotangent_dtype
from .chunks import chunk_rows
from .host import check_linear, host_call, pullback_eqn, reads_values, buffer_eqn
from .kernel import backward_kernel
from .deferred import plan_deferrals, scatter_deferred
from .memory import Buffers, Partials, stored_gradients, unit_tiles
from .two_pass import two_pass

REDUCTION_KNOB = "vjp_reduction"  # the Config tunable: how gradients several programs add to are summed
REDUCTIONS = ("atomic", "partials")


def output_leaves(outputs) -> list:
    """The forward's returned Vars, in order (the tensors that take a cotangent)."""
    if isinstance(outputs, tuple):
        return [v for o in outputs for v in output_leaves(o)]
    return [outputs] if isinstance(outputs, Var) else []


def _is_float(v) -> bool:
    """A floating tensor (a runtime float argument takes no gradient, as a Python float under autograd)."""
    return isinstance(v.type, (HostType, TensorType)) and v.type.dtype.is_floating_point


def vjp_program(forward: Program, cotangent_types, cotangent_names, reduction: str = "atomic",
                block_sizes=(), rows=None, copies: dict | None = None) -> Program:
    """The backward of `forward` for cotangents of these types (named as the backward's parameters),
    summing shared gradients by `reduction` under the Config's `block_sizes`, its grid over chunks of
    `rows` rows where `chunks` applies (None: the knob's default); `copies` (if given) gets each backward
    Var copied from another (a loop run again) -> the Var it copies."""
    if forward.kernel is None:
        raise UnsupportedOp(f"tfn.vjp({forward.name}): the kernel has no tile loop to differentiate", source=None)
    sites, copies = itertools.count(), {} if copies is None else copies
    # (counted before `two_pass`: the max loop's copies of loads never get a cotangent)
    loads = Counter(e.inputs[0] for e in walk_eqns(forward.kernel.params["region"].eqns) if e.prim is p.load_p)
    kernel = two_pass(forward.kernel, sites, copies)
    chunked = chunk_rows(forward, kernel, rows, sites)
    kernel, chunks = chunked.kernel, chunked.chunks
    forward = attrs.evolve(forward, eqns=[kernel if e is forward.kernel else e for e in forward.eqns])
    at = list(forward.eqns).index(kernel)
    before, after = list(forward.eqns[:at]), list(forward.eqns[at + 1:])
    returned = output_leaves(forward.outputs)
    if len(cotangent_types) != len(returned):
        raise ArgumentError(f"{forward.name}_vjp: {forward.name}() returns {len(returned)} tensor(s), so its backward "
                            f"takes that many cotangents after the inputs; got {len(cotangent_types)}", source=None)
    cotangent_inputs = [Var(t) for t in cotangent_types]
    hints = {**forward.hints, **dict(zip(cotangent_inputs, cotangent_names))}
    hints.update((c.grid, "chunk") for c in chunks.values())
    eqns: list = []
    cotangents = _output_cotangents(forward, after, returned, cotangent_inputs, eqns, hints)
    units = unit_tiles(kernel, forward.blocks)
    deferrals = plan_deferrals(kernel, before)
    loads = deferrals.remaining(loads)
    stored = stored_gradients(kernel, Buffers({}, cotangents, loads, None, units, chunks))
    grads = _gradient_buffers(forward.inputs, before, kernel, stored, eqns, hints, deferrals.plans)
    partials = Partials(reduction == "partials", _block_values(forward.blocks, block_sizes))
    buffers = Buffers(grads, cotangents, loads, partials, units, chunks, deferrals)
    backward = backward_kernel(kernel, buffers, sites, copies)
    _settle_stored(backward, stored, grads, eqns)
    hints.update((new, hints[old]) for new, old in copies.items() if old in hints)
    eqns.append(backward)
    _sum_partials(partials, backward, grads, eqns, hints)
    scatter_deferred(deferrals, backward, grads, eqns, hints)
    gradients = _input_gradients(forward, before, grads, eqns, hints)
    blocks = tuple(attrs.evolve(b, host=partials.blocks[b.id]) if b.id in partials.used_blocks and b.host is None
                   else b for b in forward.blocks)
    blocks = chunked.clamp(blocks)
    paths = tuple((len(forward.params) + i,) for i in range(len(cotangent_names)))
    return dce(attrs.evolve(forward, name=f"{forward.name}_vjp", inputs=(*forward.inputs, *cotangent_inputs),
                            eqns=_needed(before, eqns) + eqns, outputs=gradients, hints=hints,
                            tunables=_tunables(forward, partials, reduction, chunked.knob), blocks=blocks,
                            params=(*forward.params, *cotangent_names), input_paths=(*forward.input_paths, *paths)))


def _output_cotangents(forward, after, returned, cotangent_inputs, eqns, hints) -> dict:
    """Each tensor the kernel writes -> its cotangent: the cotangent input itself, or pulled back through
    the host code after the kernel (`pullback_outputs`, added to `eqns`)."""
    inner = list(walk_eqns(forward.kernel.params["region"].eqns))
    written = Counter(e.inputs[0] for e in inner if e.prim in p.WRITES)
    for eqn in inner:
        if eqn.prim is p.load_p and eqn.inputs[0] in written:
            raise UnsupportedOp("tfn.vjp: the kernel reads a tensor it also writes; only kernels that read their "
                                "inputs and write their outputs are differentiated", source=eqn.source)
    if after:
        flowing = set(written)
        for eqn in after:
            check_linear(eqn, flowing)
            flowing |= set(eqn.outputs)
        sources = [v for v in written if any(v in e.inputs for e in after) and _is_float(v)]
        eqns.append(pullback_eqn("pullback_outputs", after, sources, returned, cotangent_inputs, True, after[0].source))
        cotangents = dict(zip(sources, eqns[-1].outputs))
        hints.update((ct, f"grad_{hints[v]}") for v, ct in cotangents.items() if v in hints)
    else:
        if any(var not in written for var in returned):
            raise UnsupportedOp(f"tfn.vjp({forward.name}): it returns a tensor its tile loops do not write "
                                "(an input, or a fresh allocation); return only what the kernel computes", source=None)
        cotangents = dict(zip(returned, cotangent_inputs))
    for var in cotangents:
        if written[var] > 1:
            raise UnsupportedOp(f"tfn.vjp({forward.name}): its kernel writes `{hints.get(var, 'an output')}` in "
                                f"{written[var]} places; a differentiated output is written once",
                                source=forward.kernel.source)
    return cotangents


def _gradient_buffers(inputs, before, kernel, stored: dict, eqns, hints, deferred: dict) -> dict:
    """A gradient buffer (added to `eqns`) per floating tensor the kernel loads that derives from an input
    (the input, or a view of it made before the kernel): zero-filled in the dtype gradients accumulate in,
    but in the tensor's own dtype where one plain store writes it, unfilled where that store covers it
    (`stored`: `memory.stored_gradients`). A deferred gather (its load's result in `deferred`) needs none."""
    flowing = {v for v in inputs if _is_float(v)}
    for eqn in before:
        if reads_values(eqn) and any(x in flowing for x in eqn.inputs):
            check_linear(eqn, flowing)
            flowing |= set(eqn.outputs)
    grads = {}
    for eqn in walk_eqns(kernel.params["region"].eqns):
        var = eqn.inputs[0] if eqn.prim is p.load_p and eqn.outputs[0] not in deferred else None
        if var in flowing and _is_float(var) and var not in grads:
            dtype = var.type.dtype if var in stored else cotangent_dtype(var.type.dtype)
            alloc = buffer_eqn(var.type, dtype, zeroed=not stored.get(var, False))
            eqns.append(alloc)
            grads[var] = alloc.outputs[0]
            hints[grads[var]] = f"grad_{hints[var]}" if var in hints else "grad"
    return grads


def _settle_stored(kernel, stored: dict, grads: dict, eqns: list) -> None:
    """Zero-fill a buffer planned for one plain store that the backward never writes (a piecewise-constant
    function's zero gradient); the planner and the transpose agree on `memory.exclusive` otherwise."""
    writes = Counter(e.inputs[0] for e in walk_eqns(kernel.params["region"].eqns) if e.prim in p.WRITES)
    for var in stored:
        grad = grads.get(var)
        if grad is None or writes[grad] == 1:
            continue
        assert writes[grad] == 0, f"tfn.vjp: the gradient buffer of {var} was planned for one plain store"
        at = next(i for i, e in enumerate(eqns) if e.outputs == (grad,))
        eqns[at] = buffer_eqn(var.type, grad.type.dtype, out=grad)


def _tunables(forward, partials: Partials, reduction: str, rows_knob) -> tuple:
    """The forward's tunables, `vjp_reduction` where some gradient is shared (the knob matters), and
    `vjp_rows_per_program` where the grid is chunked."""
    rows = (rows_knob,) if rows_knob is not None else ()
    if partials.eligible:
        return (*forward.tunables, Tunable(REDUCTION_KNOB, REDUCTIONS, REDUCTIONS[0], reduction), *rows)
    if reduction != REDUCTIONS[0]:
        raise ConfigError(f"Config tunable {REDUCTION_KNOB}={reduction!r}: {forward.name}'s backward has no gradient "
                          "that several programs add to, so it does not register this knob", source=None)
    return (*forward.tunables, *rows)


def _block_values(blocks, block_sizes) -> dict:
    """Each block's value as host code reads it under a Config's `block_sizes` (`trace.host_blocks`)."""
    given = lambda b: block_sizes[b.id] if b.id < len(block_sizes) else None  # noqa: E731
    return {b.id: b.fixed or b.host or given(b) or min(HOST_DEFAULT, next_power_of_2(b.extent or HOST_DEFAULT))
            for b in blocks}


def _sum_partials(partials: Partials, kernel, grads: dict, eqns: list, hints: dict) -> None:
    """Allocate the partials buffers before the kernel and sum them after it (the second stage), into the
    gradient (added to what atomics wrote into its own buffer, if any)."""
    written = {e.inputs[0] for e in walk_eqns(kernel.params["region"].eqns) if e.prim in p.WRITES}
    for grad, (buffer, _) in partials.buffers.items():
        var = next(v for v, g in grads.items() if g is grad)
        eqns.insert(eqns.index(kernel), buffer_eqn(buffer.type, buffer.type.dtype, out=buffer))
        hints[buffer] = f"{hints.get(grad, 'grad')}_partials"
        total = host_call(torch.sum, (buffer, 0), grad.type)
        eqns.append(total)
        if grad in written:
            total = host_call(torch.add, (grad, total.outputs[0]), grad.type)
            eqns.append(total)
        else:
            eqns.remove(next(e for e in eqns if grad in e.outputs))
        grads[var] = total.outputs[0]
        hints[grads[var]] = hints.get(grad, "grad")


def _input_gradients(forward, before, grads, eqns, hints) -> tuple:
    """One gradient per forward input: its gradient buffer, or the pullback through the host code before
    the kernel (views of inputs) and the cast back to a half-precision input's dtype."""
    inputs = [v for v in forward.inputs if _is_float(v)]
    if all(v in forward.inputs and g.type.dtype == v.type.dtype for v, g in grads.items()):
        return tuple(grads.get(v) for v in forward.inputs)
    targets = list(grads)
    eqn = pullback_eqn("pullback_inputs", before, inputs, targets, [*inputs, *(grads[t] for t in targets)], False)
    eqns.append(eqn)
    by_input = dict(zip(inputs, eqn.outputs))
    for v, g in by_input.items():
        hints[g] = f"grad_{hints[v]}" if v in hints else "grad"
    return tuple(by_input.get(v) for v in forward.inputs)


def _needed(before, eqns) -> list:
    """The forward's host equations before the kernel that the backward's equations read (transitively)."""
    wanted = {x for e in eqns for x in e.inputs if isinstance(x, Var)}
    kept = []
    for eqn in reversed(before):
        if any(v in wanted for v in eqn.outputs):
            kept.insert(0, eqn)
            wanted |= {x for x in eqn.inputs if isinstance(x, Var)}
    return kept
