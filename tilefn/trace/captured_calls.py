"""The user's torch calls on a captured tensor (a global, a closure cell, one in a captured list or dict).

Such a call is made on a proxy of the Program input standing for the tensor (`host.const_var`), as on a
kernel argument: a host op is a host equation, run at every call on the tensor read then; a read of its
values (`int(TABLE[0])`, `.item()`, `.tolist()`, `if TABLE[0] > 0:`, `range(int(t.sum()))`, a list
indexed by it) is a value read, keyed and guarded as an argument's (`value_reads.py`, the capture read
again at each call); in a tile loop the argument's rules hold (`TABLE[t]` loads, a whole tensor in math
is refused). Before, such calls ran eagerly while tracing and their results were folded into the
Program: a later change of the tensor's data was silently ignored. Metadata (`.shape`, `.device`) and
printing read the tensor itself.
"""
from __future__ import annotations

import torch

from . import proxies
from .host import const_var
from .naming import op_name
from .proxies import HOOKS, HostTensor
from .pytree import tree_leaves, tree_map

PROXY_METHODS = frozenset({"item", "__int__", "__float__", "__bool__", "__index__", "tolist", "numpy", "cpu"})
DISPLAY = frozenset({"__repr__", "__str__", "__format__"})


@HOOKS.register("captured_call")
def captured_call(func, args, kwargs):
    """`func(*args, **kwargs)` from the user's code, with a plain (captured) tensor among its arguments."""
    name = op_name(func)
    if name in DISPLAY:
        return _plain(func, args, kwargs)
    if _is_attribute(func):  # `.shape`, `.dtype`: metadata as it is; a tensor attribute (`.T`) as a host call
        value = _plain(func, args, kwargs)
        if not any(isinstance(v, torch.Tensor) for v in tree_leaves(value)):
            return value
    args, kwargs = tree_map(_proxy, (list(args), dict(kwargs)))
    receiver = args[0] if args else None
    if isinstance(receiver, HostTensor) and name in PROXY_METHODS:
        return getattr(receiver, name)(*args[1:], **kwargs)
    if isinstance(receiver, HostTensor) and name == "__iter__":  # (rows, each a view: `for n in LENGTHS:`)
        return iter([receiver[i] for i in range(len(receiver))])
    if isinstance(receiver, HostTensor) and name == "__contains__":
        return bool((receiver == args[1]).any())
    return proxies.dispatch_torch(func, tuple(args), kwargs)


def _proxy(x):
    if not isinstance(x, torch.Tensor):
        return x
    with torch._C.DisableTorchFunction():
        meta = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="meta")
    return HostTensor(const_var(x), meta, x.device)


def _is_attribute(func) -> bool:
    """A tensor attribute's getter (`Tensor.shape.__get__`), as torch's mode sees `.shape`."""
    return type(func).__name__ == "method-wrapper" and func.__name__ == "__get__"


def _plain(func, args, kwargs):
    with torch._C.DisableTorchFunction():
        return func(*args, **kwargs)
