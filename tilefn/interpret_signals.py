"""Interpreter rules of the signal pad primitives (`tilefn.trace.signals`), in one process: a signal
updates the entries at once; a wait on entries that do not hold its value is refused (nothing else
could set them while it spun)."""
from __future__ import annotations

import torch

from .errors import TilefnError
from .interpret import _atomic_update, _padded, _python_index
from .interpret_table import rule
from .trace import primitives as p


_SIGNAL_UPDATES = {"atomic_xchg": lambda old, value: value, "atomic_add": torch.add,
                   "atomic_cas": lambda old, value: value}  # (cas: once every entry is wait_for)


def _pad_entries(ctx, eqn, pad, rest, expected, what: str):
    """The torch index of a signal or wait, its overhangs and the entries; refuses to wait on entries
    that are not `expected` (no other process sets them here, so the spin would never end)."""
    index, _, overhangs = _python_index(eqn.params["index"], rest, pad, ctx.sizes)
    current = pad[index].clone()
    if expected is not None and not bool((current == expected).all()):
        seen = sorted(set(current.reshape(-1).tolist()))[:8]
        raise TilefnError(f"{what} waits for pad entries equal to {expected}, but they hold {seen}: the reference "
                          "interpreter is one process and nothing else sets them, so the wait would never end",
                          source=eqn.source)
    return index, overhangs, current


@rule(p.signal_p)
def _signal(ctx, eqn, pad, *rest):
    params = eqn.params
    index, overhangs, current = _pad_entries(ctx, eqn, pad, rest, params["wait_for"], "signal(op='atomic_cas')")
    value = torch.full_like(current, params["signal"])
    old = _atomic_update(pad, index, _SIGNAL_UPDATES[params["op"]], [value])
    return (_padded(old, overhangs),)


@rule(p.wait_p)
def _wait(ctx, eqn, pad, *rest):
    index, _, current = _pad_entries(ctx, eqn, pad, rest, eqn.params["signal"], "wait")
    if eqn.params["update"] is not None:
        pad[index] = eqn.params["update"]
    return ()
