"""Signal pads (`tilefn.trace.signals`) in Triton: atomics on the pad's pointers and spin loops.

A signal is one `tl.atomic_xchg` / `tl.atomic_add` with the given ordering, or a compare-and-swap
retried until it finds `wait_for`. A wait spins on an atomic read (an add of 0, with the wait's
ordering: Triton has no acquire load) until every entry holds `signal`, or on a compare-and-swap
of `signal` for `update`. `tl.debug_barrier()` (the program's threads meet) comes before a signal
and after a wait unless `skip_sync`: the whole program's writes are out before the flag goes up,
and no thread reads before the flag is seen.
"""
from __future__ import annotations

from . import memory
from .emit import Emitter, tl_dtype


def _order(params) -> str:
    return f"sem={params['sem']!r}, scope={params['scope']!r}"


def lower_signal(em: Emitter, eqn) -> None:
    params, pad = eqn.params, eqn.inputs[0]
    pointer, mask = memory.address(em, eqn, tuple(params["shape"]))
    if not params["skip_sync"]:
        em.emit("tl.debug_barrier()")
    if params["op"] == "atomic_cas":  # (one entry: the front end refuses more)
        old = em.fresh("signal_old")
        em.emit(f"{old} = tl.atomic_cas({pointer}, {params['wait_for']}, {params['signal']}, {_order(params)})")
        em.emit(f"while {old} != {params['wait_for']}:")
        em.emit(f"    {old} = tl.atomic_cas({pointer}, {params['wait_for']}, {params['signal']}, {_order(params)})")
        em.assign(eqn.outputs[0], old)
        return
    value = f"tl.full({em.shape_expr(params['shape'])}, {params['signal']}, {tl_dtype(pad.type.dtype)})"
    masked = f", mask={mask}" if mask else ""
    em.assign(eqn.outputs[0], f"tl.{params['op']}({pointer}, {value}{masked}, {_order(params)})")


def lower_wait(em: Emitter, eqn) -> None:
    params = eqn.params
    shape = tuple(params["shape"])
    pointer, mask = memory.address(em, eqn, shape)
    signal = params["signal"]
    if params["op"] == "atomic_cas":
        read = f"tl.atomic_cas({pointer}, {signal}, {params['update']}, {_order(params)})"
    else:
        read = f"tl.atomic_add({pointer}, 0{f', mask={mask}' if mask else ''}, {_order(params)})"
    if shape:  # every entry (lanes past the pad count as seen)
        seen = f"tl.where({mask}, {read}, {signal})" if mask else read
        em.emit(f"while tl.max(({seen} != {signal}).to(tl.int32), axis=None) != 0:")
    else:
        em.emit(f"while {read} != {signal}:")
    em.emit("    pass")
    if not params["skip_sync"]:
        em.emit("tl.debug_barrier()")
