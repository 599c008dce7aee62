"""Proxies, the stand-ins a traced kernel computes with, and the routing of the torch calls made on them.

One `TorchFunctionMode` routes every torch call made while tracing: calls on device values go to
`DEVICE_OPS` (torch name -> handler, filled by `trace/ops/`, which also makes each a DeviceValue
method), indexing a host tensor in a loop and host calls go to the `HOOKS` that `indexing` and
`host` register.
"""
from __future__ import annotations

import math
import operator as operator_module
import sys

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from ..errors import (DataDependentControlFlow, HostReadsDevice, HostTensorInExpression, TileUnpackError, TracingError,
                      UnsupportedOp, called_from_tilefn, user_source)
from ..rule_table import RuleTable
from . import primitives as p
from . import state as st
from .abstract_eval import ABSTRACT_EVAL
from .dynamic import is_symbolic_type
from .host_blocks import host_value
from .sizes import SizeExpr, forget_argument_checks
from .ir import Eqn, Lit, Var
from .naming import op_name
from .pytree import tree_leaves
from .types import FLOAT8_DTYPES, PyScalarType, TensorType, contiguous_strides, value_dtype_problem
from .unmerged import Unmerged


class Proxy:
    """Anything traced: it stands for an IR variable."""

    ir_var = None  # the IR variable this proxy stands for (not `var`: that is torch.Tensor.var)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return dispatch_torch(func, args, kwargs or {})

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """A numpy ufunc on a traced value (`np.maximum(x[t], 0)`, `np.float32(2) * x[t]`) runs as the
        torch function of the same name; anything else is refused."""
        name, args = ufunc.__name__, [x.item() if isinstance(x, np.generic) else x for x in inputs]
        if method == "__call__" and not kwargs and name in DEVICE_OPS and not isinstance(self, HostTensor):
            return call_device_op(name, args, {})  # (the handlers take Python numbers, as numpy does)
        if method == "__call__" and not kwargs and hasattr(torch, name):
            return getattr(torch, name)(*args)
        raise UnsupportedOp(f"numpy's np.{ufunc.__name__} on a traced value: numpy runs on the host and sees no "
                            f"values while tracing; use the torch function (e.g. torch.{ufunc.__name__})")

    def __array_function__(self, func, types, args, kwargs):
        raise UnsupportedOp(f"numpy's np.{func.__name__} on a traced value: numpy runs on the host and sees no "
                            f"values while tracing; use the torch function (e.g. torch.{func.__name__})")

    def __array__(self, *args, **kwargs):
        raise UnsupportedOp("np.asarray / np.array of a traced value: its values are not known while tracing; "
                            "keep the computation in torch ops")


class DeviceValue(Proxy):
    """A tile of values (or a scalar) inside a tile loop."""

    def __init__(self, var, region):
        self.ir_var = var
        self.region = region  # the RegionBuilder defining it; retargeted when a loop closes

    @property
    def shape(self):
        return tuple(self.ir_var.type.shape)

    dtype = property(lambda self: self.ir_var.type.dtype)
    ndim = property(lambda self: len(self.shape))

    dim = lambda self: self.ndim  # noqa: E731

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"DeviceValue({self.ir_var.type.render()})"

    def __bool__(self):
        raise DataDependentControlFlow(
            "Python control flow on a device value (`bool()`, `a if cond else b`, `and`/`or` outside the test of "
            "an `if` or `while` statement): its value is only known on the GPU. Use torch.where(cond, a, b) to "
            "select values; an `if` or `while` statement may test a 0-d device value")

    def _no_host_read(self, *_):
        raise DataDependentControlFlow(
            "this needs the value of a device tensor on the host (int(), float(), .item(), "
            "indexing a Python list with it); keep the computation in torch ops")

    __int__ = __float__ = __index__ = item = tolist = _no_host_read

    def __iter__(self):
        raise TracingError("iterating over a device value is not supported; use tl.tile or reductions")

    def __setitem__(self, index, value):
        raise TracingError("assigning into part of a device value (`v[i] = ...`) is not supported: device values "
                           "are immutable; select with torch.where(mask, new, v), or store into a tensor")

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def __getattr__(self, name):
        if not name.startswith("__") and hasattr(torch.Tensor, name):
            raise UnsupportedOp(f"torch.Tensor.{name} is not supported inside a tile loop")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    __hash__ = object.__hash__


class Tile(Proxy):
    """One tile of a `tl.tile` loop: an index for tensors and the source of tile attributes."""

    def __init__(self, var, region):
        self.ir_var = var
        self.region = region

    @property
    def dim(self):
        return self.ir_var.type.dim

    def _attr(self, prim):
        return apply(prim, self)

    index = property(lambda self: self._attr(p.tile_index_p), doc="The indices of this tile, an int32 tensor")
    begin = property(lambda self: self._attr(p.tile_begin_p), doc="The first index of this tile")
    end = property(lambda self: self._attr(p.tile_end_p), doc="One past the last valid index of this tile")
    id = property(lambda self: self._attr(p.tile_id_p), doc="begin // block_size")
    count = property(lambda self: self._attr(p.tile_count_p),
                     doc="How many tiles its loop dimension has: cdiv(end - begin, block_size) of the loop")
    block_size = property(lambda self: BlockSize(self.dim.block).value(),
                          doc="The tile's block size, an int32 scalar (BlockValue)")

    def __repr__(self):
        return f"Tile({self.dim})"

    def __iter__(self):
        raise TileUnpackError("a single tile is unpacked as several: `tl.tile(m, n)` is one range [m, n); "
                              "loop over several sizes with `tl.tile([m, n])`")

    def __bool__(self):
        raise TracingError("a tile is used as a Python bool (`if tile:`, `tile and ...`): a tile is always there, "
                           "so this tests nothing. Test its indices on the device, e.g. "
                           "torch.where(tile.index < n, a, b), or its bounds (tile.begin, tile.end)")

    def __index__(self):
        raise TracingError("a tile is used as a Python int (indexing a Python list or tuple with it?); a tile "
                           "indexes tensors: pass those values as a tensor, or use tile.begin / tile.index")

    __hash__ = object.__hash__


class HostTensor(Proxy):
    """A host tensor: a kernel argument or a tensor host code made; it knows its metadata."""

    def __init__(self, var, meta: torch.Tensor, device: torch.device):
        self.ir_var = var
        self.meta = meta
        self._device = device

    dtype = property(lambda self: self.meta.dtype)
    device = property(lambda self: self._device)
    ndim = property(lambda self: self.meta.ndim)
    is_cuda = property(lambda self: self._device.type == "cuda")
    T = property(lambda self: self.__getattr__("t")())

    @property
    def shape(self):
        """torch.Size, or under static_shapes=False a tuple of ints and symbolic sizes (tilefn.trace.sizes)."""
        t = self.ir_var.type
        return tuple(t.shape) if is_symbolic_type(t) else self.meta.shape

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def stride(self, dim=None):
        t = self.ir_var.type
        strides = tuple(t.strides) if is_symbolic_type(t) else self.meta.stride()
        return strides if dim is None else strides[dim]

    dim = lambda self: self.meta.ndim  # noqa: E731

    def numel(self):
        return math.prod(self.shape)

    def element_size(self):
        return self.meta.element_size()

    def is_contiguous(self, memory_format=torch.contiguous_format):
        t = self.ir_var.type
        if is_symbolic_type(t) and memory_format is torch.contiguous_format:  # decided by guards
            return all(size == 1 or stride == want for size, stride, want in
                       zip(t.shape, t.strides, contiguous_strides(t.shape)))
        return self.meta.is_contiguous(memory_format=memory_format)

    def __len__(self):
        return int(self.shape[0]) if self.ndim else len(self.meta)

    def __repr__(self):
        return f"HostTensor({self.ir_var.type.render()}, device={self._device})"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        method = getattr(torch.Tensor, name, None)
        if method is None:
            raise AttributeError(f"torch.Tensor has no attribute {name!r}")
        return lambda *args, **kwargs: dispatch_torch(method, (self, *args), kwargs)

    def __getitem__(self, index):
        return dispatch_torch(torch.Tensor.__getitem__, (self, index), {})

    def __setitem__(self, index, value):
        dispatch_torch(torch.Tensor.__setitem__, (self, index, value), {})

    def _host_read(self, *_):
        raise HostReadsDevice("host code reads the values of a tensor as an array (or moves it to the CPU); while "
                              "tracing a kernel argument's values are read with `int(x[i])`, `.item()`, `.tolist()`")

    def _address_read(self, *_):
        raise HostReadsDevice("host code reads a tensor's address (data_ptr, storage_offset): while tracing "
                              "there is none (one compile serves tensors anywhere in memory); pass what it "
                              "computes as an int argument, or compute it outside the kernel")

    # `.item()`, `int()`... of a kernel argument's value: read at trace time (tilefn.trace.value_reads)
    item, __int__, __float__, __bool__, __index__, tolist = ((lambda self, how=h: HOOKS["read_value"](self, how))
                                                             for h in ("item", "int", "float", "bool", "index", "tolist"))
    cpu = numpy = _host_read
    data_ptr = storage_offset = untyped_storage = _address_read
    __hash__ = object.__hash__


HOST_OPERATORS = (
    "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
    "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__", "__rpow__",
    "__matmul__", "__rmatmul__", "__and__", "__rand__", "__or__", "__ror__", "__xor__", "__rxor__",
    "__lshift__", "__rshift__", "__neg__", "__pos__", "__abs__", "__invert__",
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
    "__iadd__", "__isub__", "__imul__", "__itruediv__",
)


def _host_operator(name):
    """Python operators on host tensors: recorded as host equations, like any torch call."""
    method = getattr(torch.Tensor, name)

    def operator(self, *args):
        return dispatch_torch(method, (self, *args), {})

    operator.__name__ = name
    return operator


for _name in HOST_OPERATORS:
    setattr(HostTensor, _name, _host_operator(_name))


class BlockSize:
    """A block size registered with `tl.register_block_size`, shared by the loops that use it.

    Its value is the Config's, known when the kernel is lowered: inside a tile loop it computes as
    an int32 device scalar (`bs * 2`, `n // bs`, `i < bs`); host code computes with the int the
    traced Config gives it (`tilefn.trace.host_blocks`: the Program is traced per such value).
    """

    def __init__(self, block: int):
        self.block = block

    def __repr__(self):
        return f"BlockSize(B{self.block})"

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return dispatch_torch(func, args, kwargs or {})  # (torch.arange(bs) parses no BlockSize itself)

    def value(self) -> "BlockValue | int":
        """The block size as a device scalar of the loop body being traced; in host code, an int."""
        state = st.require()
        if not state.in_device:
            return host_value(self.block)
        (var,) = bind(p.block_size_p, (), block=self.block)
        return BlockValue(var, state.region, self.block)

    def _compare(self, other, equal: bool):
        if isinstance(other, BlockSize) and not st.require().in_device:
            return (self.block == other.block) is equal  # one symbol is equal to itself
        return self.value() == other if equal else self.value() != other

    __eq__ = lambda self, other: self._compare(other, True)  # noqa: E731
    __ne__ = lambda self, other: self._compare(other, False)  # noqa: E731

    def _host_int(self, *_):
        if st.require().in_device:
            raise TracingError("a block size (tl.register_block_size) is not a Python int inside a tile loop: "
                               "there it computes as a device scalar (`bs * 2`, `i < bs`); read it as an int "
                               "in host code, or pass it as `block_size=` of tl.tile(...)")
        return host_value(self.block)

    __int__ = __index__ = _host_int
    __float__ = lambda self: float(self._host_int())  # noqa: E731
    __bool__ = lambda self: bool(self._host_int())  # noqa: E731
    __hash__ = object.__hash__


BLOCK_OPERATORS = ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__floordiv__",
                   "__rfloordiv__", "__mod__", "__rmod__", "__truediv__", "__rtruediv__", "__neg__",
                   "__lt__", "__le__", "__gt__", "__ge__", "__lshift__", "__rshift__")


def _block_operator(name):
    host_op = getattr(operator_module, name.strip("_")[1:] if name in REFLECTED else name.strip("_"))

    def operator(self, *args):
        value = self.value()
        args = [a.value() if isinstance(a, BlockSize) else a for a in args]
        if isinstance(value, int):  # host code: the traced Config's int, with Python's operators
            return host_op(args[0], value) if name in REFLECTED else host_op(value, *args)
        return getattr(value, name)(*args)

    operator.__name__ = name
    return operator


REFLECTED = frozenset({"__radd__", "__rsub__", "__rmul__", "__rfloordiv__", "__rmod__", "__rtruediv__"})
for _name in BLOCK_OPERATORS:
    setattr(BlockSize, _name, _block_operator(_name))


class BlockValue(DeviceValue):
    """A block size as an int32 device scalar (`tile.block_size`, a BlockSize in device arithmetic):
    it computes as any scalar and still names its block where a block is expected (`block_size=`)."""

    def __init__(self, var, region, block: int):
        super().__init__(var, region)
        self.block = block


# --- dispatch ------------------------------------------------------------------------------
HOST_FACTORIES = frozenset({"empty", "zeros", "ones", "full", "rand", "randn", "randint", "arange", "linspace",
                            "tensor", "as_tensor", "empty_strided", "eye", "randperm"})
DEVICE_FACTORIES = frozenset({"empty", "zeros", "ones", "full", "arange", "rand", "randn",
                              "new_zeros", "new_ones", "new_full", "new_empty"})  # (of a host tensor: its dtype)

DEVICE_OPS = RuleTable("device op")  # torch name -> handler on device values, filled by trace/ops/
HOOKS = RuleTable("trace hook")  # "load", "store" (indexing), "record_host" (host)...: registered there


def op(*names, method=True):
    """Register a device-op handler under torch names; `method=True` also makes each a DeviceValue method."""

    def wrap(fn):
        for name in names:
            DEVICE_OPS.add(name, fn)
            if method:
                _install_method(name)
        return fn

    return wrap


def _install_method(name):
    def method(self, *args, **kwargs):
        return call_device_op(name, (self, *args), kwargs)

    method.__name__ = name
    setattr(DeviceValue, name, method)
    if name.startswith("__") and name != "__getitem__":  # a tile in arithmetic means its indices
        setattr(Tile, name, method)


class TraceMode(TorchFunctionMode):
    """Active while a kernel is traced: every torch call comes through `dispatch_torch`."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return dispatch_torch(func, args, kwargs or {})


def dispatch_torch(func, args, kwargs):
    state = st.current()
    leaves = list(tree_leaves((args, kwargs)))
    if state is not None and state.dynamic and any(isinstance(x, SizeExpr) for x in leaves):
        forget_argument_checks()
    if state is None:
        if any(isinstance(x, Proxy) for x in leaves):
            raise TracingError("a traced value escaped its kernel")
        return func(*args, **kwargs)
    if any(isinstance(x, torch.Tensor) for x in leaves) and not called_from_tilefn(sys._getframe(2)):
        return HOOKS["captured_call"](func, args, kwargs)  # a captured tensor in the user's code: as a proxy
    name = op_name(func)
    if state.in_device:
        if name in ("__getitem__", "__setitem__") and isinstance(args[0], (HostTensor, torch.Tensor)):
            tensor = args[0]
            if name == "__getitem__":
                return HOOKS["load"](tensor, args[1])
            return HOOKS["store"](tensor, args[1], args[2])
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
        return HOOKS["record_host"](func, args, kwargs)
    return _run_plain(func, args, kwargs)


def _run_plain(func, args, kwargs):
    with torch._C.DisableTorchFunction():
        return func(*args, **kwargs)


def call_device_op(name, args, kwargs):
    handler = DEVICE_OPS.get(name)
    if handler is None:
        raise UnsupportedOp(f"torch.{name} is not supported inside a tile loop")
    args = [a.value() if isinstance(a, BlockSize) else a for a in args]  # a block size computes as a scalar
    kwargs = {k: v.value() if isinstance(v, BlockSize) else v for k, v in kwargs.items()}
    return handler(*args, **kwargs)


def to_atom(x):
    """A Var or Lit for a traced proxy or a Python number."""
    if isinstance(x, Proxy):
        return x.ir_var
    if isinstance(x, np.generic) and isinstance(x.item(), (bool, int, float)):  # a numpy scalar
        x = x.item()
    if isinstance(x, (bool, int, float)):
        return Lit(x, PyScalarType(type(x)))
    if isinstance(x, SizeExpr):  # a symbolic size: a runtime int (static_shapes=False)
        return Lit(x, PyScalarType(int))
    if isinstance(x, Unmerged):
        x.refuse()
    raise TracingError(f"expected a tensor, tile or number, got {type(x).__name__}")


def bind(prim, inputs=(), **params) -> tuple[Var, ...]:
    """Apply a primitive: check it with its abstract-eval rule and append the equation."""
    state = st.require()
    atoms = tuple(to_atom(x) if not isinstance(x, (Var, Lit)) else x for x in inputs)
    if prim not in p.POINTWISE and prim is not p.convert_p and any(
            isinstance(a, Var) and isinstance(a.type, PyScalarType) for a in atoms):  # a runtime float
        raise TracingError(f"{prim} takes no runtime float (a float argument, computed with at each call); make "
                           "the argument static: static_argnames= of tfn.jit, or tl.specialize(x)")
    try:
        out_types = ABSTRACT_EVAL[prim](*[a.type for a in atoms], **params)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise TracingError(f"{prim}: {exc}{_float8_hint(atoms)}") from None
    for t in out_types:
        problem = value_dtype_problem(t.dtype) if isinstance(t, TensorType) else None
        if problem:
            raise TracingError(f"{prim}: {problem}")
    outputs = tuple(Var(t) for t in out_types)
    state.emit(Eqn(prim, atoms, outputs, params, user_source(2), state.new_site(prim.name)))
    return outputs


def _float8_hint(atoms) -> str:
    if any(isinstance(a.type, TensorType) and a.type.dtype in FLOAT8_DTYPES for a in atoms):
        return ("; torch computes little on float8 values (casts, comparisons, matrix products): cast them "
                "with .to(torch.float32) first")
    return ""


def apply(prim, *inputs, **params):
    """Bind `prim` in the current loop body and wrap its outputs as device values."""
    state = st.require()
    for x in inputs:
        check_in_scope(x)
    outs = bind(prim, inputs, **params)
    wrapped = tuple(DeviceValue(v, state.region) for v in outs)
    return wrapped[0] if len(wrapped) == 1 else wrapped


def check_in_scope(x):
    """A device value may be used only inside the loop body that made it (or one nested in it)."""
    if isinstance(x, (HostTensor, torch.Tensor)):  # (a torch.Tensor: a captured one, used by an operator)
        raise HostTensorInExpression("a whole host tensor is used as a value inside a tile loop; index it with "
                                     "tiles (x[tile]) to load a tile of it, or x[()] for a 0-d one")
    if isinstance(x, (DeviceValue, Tile)):
        state = st.require()
        if x.region.closed or state.region is None or not x.region.encloses(state.region):
            if isinstance(x, Tile):
                raise TracingError("a tile is used after its tile loop ended; use it inside the loop (store "
                                   "what the loop computes into a tensor, or carry it in a loop-carried value)")
            raise TracingError(
                "a value computed inside a tile loop is used after that loop ended. Only names "
                "rebound in the loop to a new value (loop carries, e.g. `acc = acc + ...`) "
                "carry their value out of it")
