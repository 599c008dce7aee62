"""Signal pads: `tl.signal(pad, index, ...)` / `tl.wait(pad, index, ...)` (Helion's hl.signal / hl.wait).

A signal pad is an integer tensor in memory (a kernel argument; across GPUs, a symmetric-memory
signal pad) that programs use as flags. `signal` sets the indexed entries to `signal` (op
"atomic_xchg"), adds it ("atomic_add"), or swaps it in once they equal `wait_for` ("atomic_cas",
spinning until then) and returns the old values; `wait` spins until every indexed entry equals
`signal` ("ld": an atomic read) and, with op "atomic_cas", swaps in `update`. Unless `skip_sync`,
the program's threads meet before a signal is sent and after a wait is over, so the memory
accesses around it are ordered for the whole program. The pad is indexed as a store is.
"""
from __future__ import annotations

import torch

from ..errors import TracingError
from .atomics import check_sem
from .indexing import index_spec, tensor_var
from .jagged import lane_mask
from .primitives import signal_p, wait_p
from .proxies import DeviceValue, HostTensor, apply

PAD_DTYPES = (torch.int32, torch.int64)
SIGNAL_OPS = ("atomic_xchg", "atomic_add", "atomic_cas")
SIGNAL_SEMS = ("relaxed", "release", "acq_rel")
WAIT_OPS = ("ld", "atomic_cas")
WAIT_SEMS = ("relaxed", "acquire", "acq_rel")
SCOPES = ("gpu", "sys")


def _choice(name: str, what: str, value, choices) -> None:
    if value not in choices:
        raise TracingError(f"{name}({what}={value!r}): {what} is one of {', '.join(map(repr, choices))}")


def _int(name: str, what: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TracingError(f"{name}({what}={value!r}): {what} is a Python int (the value a flag holds)")
    return value


def _pad(name: str, pad):
    if isinstance(pad, DeviceValue) or not isinstance(pad, (HostTensor, torch.Tensor)):
        raise TracingError(f"{name}() takes a signal pad in memory (an int32 or int64 kernel argument), got "
                           f"{type(pad).__name__}")
    var = tensor_var(pad)
    if var.type.dtype not in PAD_DTYPES:
        raise TracingError(f"{name}() on a {str(var.type.dtype).replace('torch.', '')} tensor: a signal pad is "
                           "int32 or int64")
    return var


def _bind(prim, name: str, pad, index, **params):
    var = _pad(name, pad)
    entries, inputs, shape = index_spec(var.type, tuple(index))
    if lane_mask(shape) is not None:
        raise TracingError(f"{name}() over a jagged tile's dim: index the pad with tl.tile(begin, end) instead")
    if params["op"] == "atomic_cas" and tuple(shape):
        raise TracingError(f"{name}(op='atomic_cas') on several entries (a tile or slice index): a compare-and-swap "
                           "spin takes one entry; index the pad with ints or device scalars (t.id)")
    return apply(prim, var, *inputs, shape=shape, index=entries, masked=False, **params)


def signal(pad, index, signal: int = 1, wait_for: int | None = None, op: str = "atomic_xchg",
           sem: str = "release", scope: str = "gpu", skip_sync: bool = False):
    """Send `signal` to `pad[index]` (see the module docstring); returns the old values."""
    _choice("signal", "op", op, SIGNAL_OPS)
    _choice("signal", "sem", sem, SIGNAL_SEMS)
    _choice("signal", "scope", scope, SCOPES)
    check_sem("signal", sem, scope)
    if (op == "atomic_cas") != (wait_for is not None):
        raise TracingError(f"signal(op={op!r}, wait_for={wait_for!r}): wait_for goes with op='atomic_cas' and "
                           "only with it (atomic_xchg and atomic_add send at once)")
    return _bind(signal_p, "signal", pad, index, signal=_int("signal", "signal", signal),
                 wait_for=None if wait_for is None else _int("signal", "wait_for", wait_for), op=op, sem=sem,
                 scope=scope, skip_sync=bool(skip_sync))


def wait(pad, index, signal: int = 1, update: int | None = None, op: str = "ld", sem: str = "acquire",
         scope: str = "gpu", skip_sync: bool = False) -> None:
    """Spin until every entry of `pad[index]` equals `signal` (see the module docstring)."""
    _choice("wait", "op", op, WAIT_OPS)
    _choice("wait", "sem", sem, WAIT_SEMS)
    _choice("wait", "scope", scope, SCOPES)
    if (op == "atomic_cas") != (update is not None):
        raise TracingError(f"wait(op={op!r}, update={update!r}): update goes with op='atomic_cas' and only "
                           "with it (op='ld' only reads)")
    _bind(wait_p, "wait", pad, index, signal=_int("wait", "signal", signal),
          update=None if update is None else _int("wait", "update", update), op=op, sem=sem, scope=scope,
          skip_sync=bool(skip_sync))
