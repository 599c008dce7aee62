"""Proxies: the stand-ins a traced kernel computes with instead of real tensors."""
from __future__ import annotations

import torch

from ..errors import DataDependentControlFlow, HostReadsDevice, TracingError, UnsupportedOp


class Proxy:
    """Anything traced: it stands for an IR variable."""

    var = None

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        from .dispatch import dispatch_torch

        return dispatch_torch(func, args, kwargs or {})


class DeviceValue(Proxy):
    """A tile of values (or a scalar) inside a tile loop."""

    def __init__(self, var, region):
        self.var = var
        self.region = region  # the RegionBuilder defining it; retargeted when a loop closes

    @property
    def shape(self):
        return tuple(self.var.type.shape)

    @property
    def dtype(self) -> torch.dtype:
        return self.var.type.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dim(self) -> int:
        return self.ndim

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"DeviceValue({self.var.type.render()})"

    def __bool__(self):
        raise DataDependentControlFlow(
            "Python control flow (`if`, `while`, `and`/`or`, `bool()`) on a device value: its value "
            "is only known on the GPU. Use torch.where(cond, a, b) to select values instead")

    def _no_host_read(self, *_):
        raise DataDependentControlFlow(
            "this needs the value of a device tensor on the host (int(), float(), .item(), "
            "indexing a Python list with it); keep the computation in torch ops")

    __int__ = __float__ = __index__ = item = tolist = _no_host_read

    def __iter__(self):
        raise TracingError("iterating over a device value is not supported; use tl.tile or reductions")

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
        self.var = var
        self.region = region

    @property
    def dim(self):
        return self.var.type.dim

    def _attr(self, prim):
        from .dispatch import apply

        return apply(prim, self)

    index = property(lambda self: self._attr("tile_index"), doc="The indices of this tile, an int32 tensor")
    begin = property(lambda self: self._attr("tile_begin"), doc="The first index of this tile")
    end = property(lambda self: self._attr("tile_end"), doc="One past the last valid index of this tile")
    id = property(lambda self: self._attr("tile_id"), doc="begin // block_size")
    count = property(lambda self: self._attr("tile_len"), doc="How many indices of this tile are valid")
    block_size = property(lambda self: self._attr("block_size"), doc="The tile's block size")

    def __repr__(self):
        return f"Tile({self.dim})"

    def __bool__(self):
        return True

    __hash__ = object.__hash__


class HostTensor(Proxy):
    """A host tensor: a kernel argument or a tensor host code made; it knows its metadata."""

    def __init__(self, var, meta: torch.Tensor, device: torch.device):
        self.var = var
        self.meta = meta
        self._device = device

    shape = property(lambda self: self.meta.shape)
    dtype = property(lambda self: self.meta.dtype)
    device = property(lambda self: self._device)
    ndim = property(lambda self: self.meta.ndim)
    is_cuda = property(lambda self: self._device.type == "cuda")
    T = property(lambda self: self.__getattr__("t")())

    def size(self, dim=None):
        return self.meta.shape if dim is None else self.meta.size(dim)

    def stride(self, dim=None):
        return self.meta.stride() if dim is None else self.meta.stride(dim)

    def dim(self):
        return self.meta.ndim

    def numel(self):
        return self.meta.numel()

    def element_size(self):
        return self.meta.element_size()

    def is_contiguous(self, memory_format=torch.contiguous_format):
        return self.meta.is_contiguous(memory_format=memory_format)

    def __len__(self):
        return len(self.meta)

    def __repr__(self):
        return f"HostTensor({self.var.type.render()}, device={self._device})"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        method = getattr(torch.Tensor, name, None)
        if method is None:
            raise AttributeError(f"torch.Tensor has no attribute {name!r}")
        from .dispatch import dispatch_torch

        return lambda *args, **kwargs: dispatch_torch(method, (self, *args), kwargs)

    def __getitem__(self, index):
        from .dispatch import dispatch_torch

        return dispatch_torch(torch.Tensor.__getitem__, (self, index), {})

    def __setitem__(self, index, value):
        from .dispatch import dispatch_torch

        dispatch_torch(torch.Tensor.__setitem__, (self, index, value), {})

    def _host_read(self, *_):
        raise HostReadsDevice(
            "host code reads the value of a tensor; only its shape, dtype and device are known "
            "when the kernel is traced. Move this computation into a tile loop or out of the kernel")

    __bool__ = __int__ = __float__ = __index__ = item = tolist = _host_read
    cpu = numpy = _host_read
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
        from .dispatch import dispatch_torch

        return dispatch_torch(method, (self, *args), {})

    operator.__name__ = name
    return operator


for _name in HOST_OPERATORS:
    setattr(HostTensor, _name, _host_operator(_name))


class BlockSize:
    """A block size registered with `tl.register_block_size`, shared by the loops that use it."""

    def __init__(self, block: int):
        self.block = block

    def __repr__(self):
        return f"BlockSize(B{self.block})"


def _install_device_methods():
    """Give DeviceValue the torch.Tensor methods and operators that tilefn supports."""
    from .dispatch import DEVICE_METHODS, dispatch_method

    def make(name):
        def method(self, *args, **kwargs):
            return dispatch_method(name, self, args, kwargs)

        method.__name__ = name
        return method

    for name in DEVICE_METHODS:
        setattr(DeviceValue, name, make(name))
        if name.startswith("__") and name != "__getitem__":  # a tile in arithmetic means its indices
            setattr(Tile, name, make(name))
