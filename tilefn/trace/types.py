"""Abstract values: the types of IR variables."""
from __future__ import annotations

from typing import Union

import attrs
import torch

_DTYPE_NAMES = {
    torch.float64: "f64", torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16",
    torch.float8_e4m3fn: "f8e4m3", torch.float8_e5m2: "f8e5m2",
    torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8",
    torch.uint8: "u8", torch.bool: "b1",
}


# the element types kernels compute with (tilefn.lower.emit.TL_DTYPES lowers each)
KERNEL_DTYPES = frozenset(_DTYPE_NAMES)


def tensor_problem(tensor: torch.Tensor) -> str | None:
    """Why a kernel cannot take `tensor` as an argument (what to do instead), or None if it can."""
    if tensor.layout != torch.strided:
        return f"is a {str(tensor.layout).replace('torch.', '')} tensor; kernels take dense tensors: pass .to_dense()"
    if tensor.device.type not in ("cpu", "cuda"):
        return (f"is on the {tensor.device.type} device; kernels run on CUDA tensors (and on CPU tensors, "
                "through Triton's interpreter)")
    if tensor.dtype.is_complex:
        return f"is {tensor.dtype}; complex tensors are not supported: pass torch.view_as_real(...) instead"
    if tensor.dtype not in KERNEL_DTYPES:
        return f"has dtype {tensor.dtype}, which tilefn kernels do not support yet"
    return None


FLOAT8_DTYPES = frozenset({torch.float8_e4m3fn, torch.float8_e5m2})


def value_dtype_problem(dtype: torch.dtype) -> str | None:
    """Why a device value cannot have `dtype` (what to do instead), or None if it can."""
    if dtype in KERNEL_DTYPES:
        return None
    supported = ", ".join(sorted(str(d).replace("torch.", "") for d in KERNEL_DTYPES))
    return f"values of dtype {dtype} are not supported inside a tile loop (supported: {supported})"


def dtype_name(dtype: torch.dtype) -> str:
    return _DTYPE_NAMES.get(dtype, str(dtype).replace("torch.", ""))


@attrs.frozen
class TileDim:
    """A dimension of extent `block size of block` that walks a tile loop's range. `tile` None: the
    block's full lanes, all valid, walked by no tile (a value made before the loop its block sizes)."""

    tile: int | None
    block: int

    def __str__(self) -> str:
        return f"t{self.tile}" if self.tile is not None else f"B{self.block}"


def lanes_dim(block: int) -> TileDim:
    """The dimension of all lanes of `block` (see TileDim)."""
    return TileDim(None, block)


Dim = Union[int, TileDim]


def _shape_str(shape, names=None) -> str:
    names = names or {}
    return "[" + ", ".join(names.get(d, str(d)) for d in shape) + "]"


@attrs.frozen
class TensorType:
    """A device value: a tile of elements, or a scalar when shape is ()."""

    shape: tuple = attrs.field(converter=tuple)
    dtype: torch.dtype

    @property
    def rank(self) -> int:
        return len(self.shape)

    def render(self, names=None) -> str:
        return dtype_name(self.dtype) + _shape_str(self.shape, names)


@attrs.frozen
class HostType:
    """A host tensor: concrete shape, strides and device (the program is specialised on them)."""

    shape: tuple = attrs.field(converter=tuple)
    strides: tuple = attrs.field(converter=tuple)
    dtype: torch.dtype
    device: str
    aligned: bool = True  # its address is a multiple of 16 bytes (lets Triton vectorise)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def render(self, names=None) -> str:
        contiguous = self.strides == contiguous_strides(self.shape)
        strides = "" if contiguous else " strides=" + _shape_str(self.strides)
        return dtype_name(self.dtype) + _shape_str(self.shape) + strides + ("" if self.aligned else " unaligned")


@attrs.frozen
class TileType:
    """The handle of a tile (what `tl.tile` yields): used as an index and for tile attributes."""

    dim: TileDim

    def render(self, names=None) -> str:
        return "tile"


@attrs.frozen
class PyScalarType:
    """A Python number used in a device op: weakly typed, as PyTorch treats Python scalars."""

    kind: type

    def render(self, names=None) -> str:
        return self.kind.__name__


def contiguous_strides(shape) -> tuple:
    """Row-major strides; of a symbolic shape (static_shapes=False) the products of the later sizes."""
    strides, acc = [], 1
    for size in reversed(tuple(shape)):
        strides.append(acc)
        acc = acc * max(size, 1) if isinstance(size, int) else acc * size
    return tuple(reversed(strides))


_NO_DATA = (torch._subclasses.fake_tensor.FakeTensor, torch._subclasses.functional_tensor.FunctionalTensor)


def is_aligned(tensor: torch.Tensor) -> bool:
    """Whether the tensor's first element is 16-byte aligned; for a tensor with no data (meta, or
    torch.compile's fake tensors), whether its offset into an aligned allocation is."""
    if isinstance(tensor, _NO_DATA) or tensor.is_meta:
        return (tensor.storage_offset() * tensor.element_size()) % 16 == 0
    return tensor.data_ptr() % 16 == 0


def host_type_of(tensor: torch.Tensor, device=None, base_aligned: bool = True) -> HostType:
    """The type of a real tensor, or of a meta tensor standing for one on `device`."""
    if tensor.is_meta:
        aligned = base_aligned and (tensor.storage_offset() * tensor.element_size()) % 16 == 0
    else:
        aligned = is_aligned(tensor)
    return HostType(tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype, str(device or tensor.device), aligned)


def broadcast_shapes(*shapes) -> tuple | None:
    """Numpy broadcasting over symbolic dims; None when the shapes don't broadcast."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            return None
        out.append(dims.pop() if dims else 1)
    return tuple(out)
