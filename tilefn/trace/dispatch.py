"""Routing of torch calls made while tracing: host equations, device ops, loads and stores."""
from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

from ..errors import TracingError, UnsupportedOp
from . import state as st
from .proxies import DeviceValue, HostTensor, Proxy, Tile

HOST_FACTORIES = frozenset({
    "empty", "zeros", "ones", "full", "rand", "randn", "randint", "arange", "linspace",
    "tensor", "as_tensor", "empty_strided", "eye", "randperm",
})
DEVICE_FACTORIES = frozenset({"empty", "zeros", "ones", "full", "arange"})


def tree_leaves(tree):
    if isinstance(tree, (list, tuple)):
        for item in tree:
            yield from tree_leaves(item)
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from tree_leaves(item)
    else:
        yield tree


def tree_map(fn, tree):
    if isinstance(tree, (list, tuple)):
        items = [tree_map(fn, item) for item in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else type(tree)(items)
    if isinstance(tree, dict):
        return {k: tree_map(fn, v) for k, v in tree.items()}
    return fn(tree)


def op_name(func) -> str:
    name = getattr(func, "__name__", None) or str(func)
    if name == "__get__":  # a property such as Tensor.shape, reached through its getter
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    return name


class TraceMode(TorchFunctionMode):
    """Active while a kernel is traced: every torch call comes through `dispatch_torch`."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return dispatch_torch(func, args, kwargs or {})


def dispatch_torch(func, args, kwargs):
    state = st.current()
    leaves = list(tree_leaves((args, kwargs)))
    if state is None:
        if any(isinstance(x, Proxy) for x in leaves):
            raise TracingError("a traced value escaped its kernel")
        return func(*args, **kwargs)
    name = op_name(func)
    if state.in_device:
        from . import indexing

        if name in ("__getitem__", "__setitem__") and isinstance(args[0], (HostTensor, torch.Tensor)):
            tensor = args[0]
            if name == "__getitem__":
                return indexing.load(tensor, args[1])
            return indexing.store(tensor, args[1], args[2])
        if any(isinstance(x, (DeviceValue, Tile)) for x in leaves) or name in DEVICE_FACTORIES:
            return call_device_op(name, args, kwargs)
        if any(isinstance(x, HostTensor) for x in leaves):
            raise TracingError(
                f"torch.{name} on a whole host tensor inside a tile loop; index it with tiles "
                "(x[tile]) to work on a tile of it")
        return _run_plain(func, args, kwargs)
    if any(isinstance(x, (DeviceValue, Tile)) for x in leaves):
        raise TracingError(f"torch.{name} uses a device value outside the tile loop that made it")
    if any(isinstance(x, HostTensor) for x in leaves) or name in HOST_FACTORIES:
        from .host import record_host

        return record_host(func, args, kwargs)
    return _run_plain(func, args, kwargs)


def _run_plain(func, args, kwargs):
    with torch._C.DisableTorchFunction():
        return func(*args, **kwargs)


def call_device_op(name, args, kwargs):
    from .device_ops import DEVICE_OPS

    handler = DEVICE_OPS.get(name)
    if handler is None:
        raise UnsupportedOp(f"torch.{name} is not supported inside a tile loop")
    return handler(*args, **kwargs)


def dispatch_method(name, self, args, kwargs):
    return call_device_op(name, (self, *args), kwargs)


def apply(prim, *inputs, **params):
    """Bind `prim` in the current loop body and wrap its outputs as device values."""
    state = st.require()
    for x in inputs:
        check_in_scope(x)
    outs = st.bind(prim, inputs, **params)
    wrapped = tuple(DeviceValue(v, state.region) for v in outs)
    return wrapped[0] if len(wrapped) == 1 else wrapped


def check_in_scope(x):
    """A device value may be used only inside the loop body that made it (or one nested in it)."""
    if isinstance(x, HostTensor):
        raise TracingError("a whole host tensor is used as a value inside a tile loop; index it "
                           "with tiles (x[tile]) to load a tile of it")
    if isinstance(x, (DeviceValue, Tile)):
        state = st.require()
        if x.region.closed or state.region is None or not x.region.encloses(state.region):
            raise TracingError(
                "a value computed inside a tile loop is used after that loop ended. Only names "
                "rebound in the loop to a new value (loop carries, e.g. `acc = acc + ...`) "
                "carry their value out of it")
    elif isinstance(x, torch.Tensor):
        raise TracingError("a real tensor is used as a value inside a tile loop; index it with "
                           "tiles (x[tile]) to load a tile of it")


DEVICE_METHODS: list[str] = []  # filled by device_ops
