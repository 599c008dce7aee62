"""Torch functions and methods on device values: each maps to primitives or decomposes into torch ops."""
from __future__ import annotations

import math

import torch

from ..errors import ShapeError, TracingError
from . import state as st
from .dispatch import DEVICE_METHODS, apply
from .primitives import BINARY, UNARY
from .proxies import BlockSize, DeviceValue, Tile
from .types import TileDim

DEVICE_OPS: dict = {}


def op(*names, method=True):
    """Register a handler under torch names; `method=True` also makes it a DeviceValue method."""

    def wrap(fn):
        for name in names:
            DEVICE_OPS[name] = fn
            if method:
                DEVICE_METHODS.append(name)
        return fn

    return wrap


def _value(x):
    """Tiles used as values mean their indices."""
    return x.index if isinstance(x, Tile) else x


def pointwise(prim, *args):
    return apply(prim, *[_value(a) for a in args])


# --- pointwise, registered from data -------------------------------------------------------
_UNARY_ALIASES = {"negative": "neg", "__neg__": "neg", "absolute": "abs", "__abs__": "abs",
                  "special_erf": "erf", "__invert__": "bitwise_not"}
_BINARY_ALIASES = {
    "__add__": "add", "__sub__": "sub", "subtract": "sub", "__mul__": "mul", "multiply": "mul",
    "__truediv__": "div", "divide": "div", "true_divide": "div", "floor_divide": "floordiv",
    "__floordiv__": "floordiv", "__mod__": "remainder", "__pow__": "pow", "fmax": "maximum",
    "fmin": "minimum", "__eq__": "eq", "__ne__": "ne", "__lt__": "lt", "__le__": "le",
    "__gt__": "gt", "__ge__": "ge", "less": "lt", "less_equal": "le", "greater": "gt",
    "greater_equal": "ge", "not_equal": "ne", "__and__": "bitwise_and", "__or__": "bitwise_or",
    "__xor__": "bitwise_xor", "__lshift__": "lshift", "__rshift__": "rshift",
    "bitwise_left_shift": "lshift", "bitwise_right_shift": "rshift",
}
_REFLECTED = {"__radd__": "add", "__rsub__": "sub", "rsub": "sub", "__rmul__": "mul",
              "__rtruediv__": "div", "__rfloordiv__": "floordiv", "__rmod__": "remainder",
              "__rpow__": "pow", "__rand__": "bitwise_and", "__ror__": "bitwise_or",
              "__rxor__": "bitwise_xor"}


def _unary_handler(prim):
    def handler(x):
        if prim == "bitwise_not" and x.dtype == torch.bool:
            return pointwise("logical_not", x)
        return pointwise(prim, x)

    return handler


def _binary_handler(prim, reflected=False):
    def handler(a, b, *, alpha=1, rounding_mode=None):
        if reflected:
            a, b = b, a
        if alpha != 1:
            b = pointwise("mul", b, alpha)
        if prim == "div" and rounding_mode == "floor":
            return pointwise("floordiv", a, b)
        if prim == "div" and rounding_mode == "trunc":
            return _trunc_div(a, b)
        if prim in ("bitwise_and", "bitwise_or", "bitwise_xor") and _is_bool(a) and _is_bool(b):
            return pointwise("logical_" + prim.split("_")[1], a, b)
        return pointwise(prim, a, b)

    return handler


def _trunc_div(a, b):
    """`torch.div(a, b, rounding_mode="trunc")`: integers stay integers (exactly), floats truncate."""
    if _is_float(a) or _is_float(b):
        return pointwise("trunc", pointwise("div", a, b))
    q = pointwise("floordiv", a, b)
    inexact = pointwise("ne", pointwise("remainder", a, b), 0)
    signs_differ = pointwise("ne", pointwise("lt", a, 0), pointwise("lt", b, 0))
    return pointwise("where", pointwise("logical_and", inexact, signs_differ), pointwise("add", q, 1), q)


def _is_float(x):
    return isinstance(x, float) or (isinstance(x, DeviceValue) and x.dtype.is_floating_point)


def _is_bool(x):
    return isinstance(x, bool) or getattr(x, "dtype", None) == torch.bool


for _name in UNARY:
    op(_name)(_unary_handler(_name))
for _alias, _prim in _UNARY_ALIASES.items():
    op(_alias)(_unary_handler(_prim))
for _name in BINARY:
    op(_name)(_binary_handler(_name))
for _alias, _prim in _BINARY_ALIASES.items():
    op(_alias)(_binary_handler(_prim))
for _alias, _prim in _REFLECTED.items():
    op(_alias)(_binary_handler(_prim, reflected=True))


@op("where")
def where(cond, a, b):
    return pointwise("where", cond, a, b)


def _refuse_bool(name, x):
    if x.dtype == torch.bool:
        raise TracingError(f"torch.{name} is not defined for bool values (as in PyTorch)")


@op("clamp", "clip")
def clamp(x, min=None, max=None):
    if min is not None:
        x = pointwise("maximum", x, min)
    if max is not None:
        x = pointwise("minimum", x, max)
    _refuse_bool("clamp", x)
    return x


op("clamp_min")(lambda x, min: clamp(x, min=min))
op("clamp_max")(lambda x, max: clamp(x, max=max))


@op("relu")
def relu(x, inplace=False):
    _refuse_bool("relu", x)
    return pointwise("maximum", x, 0 if not x.dtype.is_floating_point else 0.0)


def _upcast(x):
    """Half-precision math runs in float32, as PyTorch's kernels do internally."""
    return to(x, torch.float32) if x.dtype in (torch.float16, torch.bfloat16) else x


@op("gelu")
def gelu(x, approximate="none"):
    xf = _upcast(x)
    if approximate == "tanh":
        inner = (xf + 0.044715 * xf * xf * xf) * math.sqrt(2.0 / math.pi)
        out = 0.5 * xf * (1.0 + torch.tanh(inner))
    else:
        out = 0.5 * xf * (1.0 + torch.erf(xf * (1.0 / math.sqrt(2.0))))
    return to(out, x.dtype)


@op("silu")
def silu(x, inplace=False):
    xf = _upcast(x)
    return to(xf * torch.sigmoid(xf), x.dtype)


@op("softplus")
def softplus(x, beta=1.0, threshold=20.0):
    xf = _upcast(x)
    out = torch.where(xf * beta > threshold, xf, torch.log1p(torch.exp(xf * beta)) / beta)
    return to(out, x.dtype)


# --- casts and identity views -------------------------------------------------------------
@op("to", "type")
def to(x, *args, dtype=None, **kwargs):
    for arg in args:
        if isinstance(arg, torch.dtype):
            dtype = arg
        elif isinstance(arg, DeviceValue):
            dtype = arg.dtype
    if dtype is None or dtype == x.dtype:
        return x
    return apply("convert", _value(x), dtype=dtype)


for _name, _dtype in {"float": torch.float32, "half": torch.float16, "bfloat16": torch.bfloat16,
                      "double": torch.float64, "int": torch.int32, "long": torch.int64,
                      "bool": torch.bool}.items():
    op(_name)(lambda x, _dtype=_dtype: to(x, _dtype))


@op("contiguous", "detach")
def identity(x, *args, **kwargs):
    return x


@op("clone")
def clone(x, *, memory_format=None):
    """A new value (not just a new name): loop-carry detection tells values apart by identity."""
    x = _value(x)
    return apply("convert", x, dtype=x.dtype)


# --- reductions ---------------------------------------------------------------------------
def _axes(x, dim):
    if dim is None:
        return list(range(x.ndim))
    dims = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    for d in dims:
        if not -x.ndim <= d < max(x.ndim, 1):
            raise ShapeError(f"dimension {d} is out of range for a {x.ndim}-d value")
    return sorted({d % max(x.ndim, 1) for d in dims})


def _reduce(prim, x, dim=None, keepdim=False):
    x = _value(x)
    for axis in reversed(_axes(x, dim)):
        x = apply(prim, x, axis=axis, keepdim=keepdim)
    return x


@op("sum")
def sum_(x, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        x = to(x, dtype)
    return _reduce("reduce_sum", x, dim, keepdim)


@op("prod")
def prod(x, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        x = to(x, dtype)
    return _reduce("reduce_prod", x, dim, keepdim)


@op("amax")
def amax(x, dim=None, keepdim=False):
    return _reduce("reduce_max", x, dim, keepdim)


@op("amin")
def amin(x, dim=None, keepdim=False):
    return _reduce("reduce_min", x, dim, keepdim)


def _minmax(reduce_prim, arg_prim, elementwise):
    def handler(x, dim=None, keepdim=False):
        if isinstance(dim, (DeviceValue, Tile)):
            return pointwise(elementwise, x, dim)
        x = _value(x)
        if dim is None:
            return _reduce(reduce_prim, x, None, False)
        values = _reduce(reduce_prim, x, dim, keepdim)
        indices = _reduce(arg_prim, to(x, torch.uint8) if x.dtype == torch.bool else x, dim, keepdim)
        return torch.return_types.max((values, indices)) if reduce_prim == "reduce_max" else torch.return_types.min((values, indices))

    return handler


op("max")(_minmax("reduce_max", "argmax", "maximum"))
op("min")(_minmax("reduce_min", "argmin", "minimum"))


@op("argmax")
def argmax(x, dim=None, keepdim=False):
    if dim is None:
        raise TracingError("argmax needs `dim` inside a tile loop")
    return _reduce("argmax", x, dim, keepdim)


@op("argmin")
def argmin(x, dim=None, keepdim=False):
    if dim is None:
        raise TracingError("argmin needs `dim` inside a tile loop")
    return _reduce("argmin", x, dim, keepdim)


def _count(x, axes):
    """How many valid elements the reduction over `axes` sees (a tile's edge may hold fewer)."""
    count = 1
    for axis in axes:
        dim = x.shape[axis]
        if isinstance(dim, TileDim):
            tile_len = apply("tile_len", st.require().tile_vars[dim.tile])
            count = tile_len if count == 1 else count * tile_len
        else:
            count = count * dim
    return count


@op("mean")
def mean(x, dim=None, keepdim=False, *, dtype=None):
    x = _value(x)
    if dtype is not None:
        x = to(x, dtype)
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        raise TracingError(f"mean of an integer value ({x.dtype}); cast it to a float dtype first")
    xf = _upcast(x)
    total = _reduce("reduce_sum", xf, dim, keepdim)
    return to(total / _count(x, _axes(x, dim)), x.dtype)


@op("var")
def var(x, dim=None, *, correction=1, keepdim=False, unbiased=None):
    if unbiased is not None:
        correction = int(unbiased)
    xf = _upcast(_value(x))
    centered = xf - mean(xf, dim, keepdim=True)
    total = _reduce("reduce_sum", centered * centered, dim, keepdim)
    count = _count(xf, _axes(xf, dim))
    return to(total / (count - correction), x.dtype)


@op("std")
def std(x, dim=None, *, correction=1, keepdim=False, unbiased=None):
    return torch.sqrt(var(x, dim, correction=correction, keepdim=keepdim, unbiased=unbiased))


@op("logsumexp")
def logsumexp(x, dim, keepdim=False):
    x = _value(x)
    if not x.dtype.is_floating_point:  # as PyTorch: integers give the default float dtype
        x = to(x, torch.get_default_dtype())
    xf = _upcast(x)
    m = amax(xf, dim, keepdim=True)
    m = torch.where(torch.isinf(m), 0.0, m)
    out = torch.log(sum_(torch.exp(xf - m), dim, keepdim=True)) + m
    if not keepdim:
        for axis in reversed(_axes(xf, dim)):
            out = squeeze(out, axis)
    return to(out, x.dtype)


@op("all")
def all_(x, dim=None, keepdim=False):
    return _reduce("reduce_min", to(x, torch.bool), dim, keepdim)


@op("any")
def any_(x, dim=None, keepdim=False):
    return _reduce("reduce_max", to(x, torch.bool), dim, keepdim)


@op("cumsum")
def cumsum(x, dim, *, dtype=None):
    if dtype is not None:
        x = to(x, dtype)
    return apply("cumsum", _value(x), axis=_axes(x, dim)[0])


@op("cumprod")
def cumprod(x, dim, *, dtype=None):
    if dtype is not None:
        x = to(x, dtype)
    return apply("cumprod", _value(x), axis=_axes(x, dim)[0])


# --- normalisations and softmax -----------------------------------------------------------
@op("softmax")
def softmax(x, dim=None, dtype=None, _stacklevel=3):
    xf = _upcast(_value(x))
    if dtype is not None:
        xf = to(xf, dtype)
    e = torch.exp(xf - amax(xf, dim, keepdim=True))
    return to(e / sum_(e, dim, keepdim=True), dtype or x.dtype)


@op("log_softmax")
def log_softmax(x, dim=None, dtype=None, _stacklevel=3):
    xf = _upcast(_value(x))
    if dtype is not None:
        xf = to(xf, dtype)
    shifted = xf - amax(xf, dim, keepdim=True)
    out = shifted - torch.log(sum_(torch.exp(shifted), dim, keepdim=True))
    return to(out, dtype or x.dtype)


def _norm_axes(x, normalized_shape):
    count = len(normalized_shape) if isinstance(normalized_shape, (list, tuple, torch.Size)) else 1
    return list(range(x.ndim - count, x.ndim))


@op("layer_norm", method=False)
def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    xf = _upcast(x)
    axes = _norm_axes(x, normalized_shape)
    mu = mean(xf, axes, keepdim=True)
    centered = xf - mu
    out = centered * torch.rsqrt(mean(centered * centered, axes, keepdim=True) + eps)
    if weight is not None:
        out = out * _upcast(weight)
    if bias is not None:
        out = out + _upcast(bias)
    return to(out, x.dtype)


@op("rms_norm", method=False)
def rms_norm(x, normalized_shape, weight=None, eps=None):
    xf = _upcast(x)
    eps = torch.finfo(xf.dtype).eps if eps is None else eps  # PyTorch: the eps of the math dtype
    out = xf * torch.rsqrt(mean(xf * xf, _norm_axes(x, normalized_shape), keepdim=True) + eps)
    if weight is not None:
        out = out * _upcast(weight)
    return to(out, x.dtype)


# --- views --------------------------------------------------------------------------------
@op("unsqueeze")
def unsqueeze(x, dim):
    x = _value(x)
    return apply("expand_dims", x, axis=dim % (x.ndim + 1))


@op("squeeze")
def squeeze(x, dim=None):
    x = _value(x)
    axes = [i for i, d in enumerate(x.shape) if d == 1] if dim is None else _axes(x, dim)
    for axis in reversed(axes):
        if x.shape[axis] == 1:
            x = apply("squeeze", x, axis=axis)
    return x


def _shape_arg(shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (list, tuple)) else shape
    return tuple(s.dim if isinstance(s, Tile) else s for s in shape)


@op("reshape", "view")
def reshape(x, *shape):
    x = _value(x)
    shape = list(_shape_arg(shape))
    static = math.prod(d for d in x.shape if isinstance(d, int))
    symbolic = sorted((d for d in x.shape if isinstance(d, TileDim)), key=lambda d: d.tile)
    if -1 in shape:
        known = math.prod(d for d in shape if isinstance(d, int) and d != -1)
        shape[shape.index(-1)] = static // max(known, 1)
    new_static = math.prod(d for d in shape if isinstance(d, int))
    new_symbolic = sorted((d for d in shape if isinstance(d, TileDim)), key=lambda d: d.tile)
    if new_static != static or new_symbolic != symbolic:
        raise ShapeError(f"can't reshape a value of shape {list(map(str, x.shape))} to {list(map(str, shape))}")
    if tuple(shape) == x.shape:
        return x
    return apply("reshape", x, shape=tuple(shape))


@op("permute")
def permute(x, *dims):
    dims = tuple(d % x.ndim for d in _shape_arg(dims))
    if sorted(dims) != list(range(x.ndim)):
        raise ShapeError(f"permute needs a permutation of {x.ndim} dimensions, got {list(dims)}")
    return x if dims == tuple(range(x.ndim)) else apply("permute", _value(x), perm=dims)


@op("transpose", "swapaxes")
def transpose(x, dim0, dim1):
    perm = list(range(x.ndim))
    perm[dim0 % x.ndim], perm[dim1 % x.ndim] = perm[dim1 % x.ndim], perm[dim0 % x.ndim]
    return permute(x, *perm)


@op("t")
def t(x):
    return x if x.ndim < 2 else transpose(x, 0, 1)


@op("expand", "broadcast_to")
def expand(x, *shape):
    x = _value(x)
    shape = _shape_arg(shape)
    shape = tuple(x.shape[i - (len(shape) - x.ndim)] if s == -1 else s for i, s in enumerate(shape))
    from .types import broadcast_shapes

    if broadcast_shapes(x.shape, shape) != shape:
        raise ShapeError(f"can't expand a value of shape {list(map(str, x.shape))} to {list(map(str, shape))}")
    return x if shape == x.shape else apply("broadcast_to", x, shape=shape)


@op("expand_as")
def expand_as(x, other):
    return expand(x, other.shape)


@op("__getitem__")
def getitem(x, index):
    from .indexing import getitem_value

    return getitem_value(_value(x), index)


# --- matrix products ----------------------------------------------------------------------
def dot(a, b, acc=None, out_dtype=None):
    """`a @ b (+ acc)` with float32 accumulation; the result has `out_dtype`."""
    a, b = _value(a), _value(b)
    if a.ndim not in (2, 3) or a.ndim != b.ndim:
        raise ShapeError(f"matrix product of {a.ndim}-d and {b.ndim}-d values; both must be 2-d or 3-d")
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"matrix product of shapes {list(map(str, a.shape))} and {list(map(str, b.shape))}: "
                         "inner dimensions differ")
    if a.dtype != b.dtype:
        common = torch.promote_types(a.dtype, b.dtype)
        a, b = to(a, common), to(b, common)
    if out_dtype is None:
        out_dtype = acc.dtype if acc is not None else (torch.int32 if not a.dtype.is_floating_point else torch.float32)
    if acc is None:
        return apply("dot", a, b, out_dtype=out_dtype)
    expected = a.shape[:-1] + b.shape[-1:]
    if tuple(acc.shape) != expected:
        acc = expand(acc, expected)
    return apply("dot", a, b, acc, out_dtype=out_dtype)


@op("matmul", "mm", "bmm", "__matmul__")
def matmul(a, b):
    out_dtype = torch.promote_types(a.dtype, b.dtype)
    return dot(a, b, out_dtype=out_dtype)


op("__rmatmul__")(lambda a, b: matmul(b, a))


@op("addmm", "baddbmm")
def addmm(acc, a, b, *, beta=1, alpha=1):
    if beta == 1 and alpha == 1 and isinstance(acc, DeviceValue):
        return dot(a, b, acc, out_dtype=acc.dtype)
    product = dot(a, b, out_dtype=torch.float32)
    return to(product * alpha + acc * beta, acc.dtype)


# --- creation -----------------------------------------------------------------------------
def shape_entries(shape) -> tuple:
    """A shape given as ints and tiles (as Helion's `hl.zeros([tile_m, tile_n])`)."""
    if isinstance(shape, (int, Tile)):
        shape = [shape]
    out = []
    for s in shape:
        if isinstance(s, Tile):
            out.append(s.dim)
        elif isinstance(s, (int, TileDim)) and not isinstance(s, bool):
            out.append(s)
        elif isinstance(s, BlockSize):
            raise ShapeError("use the tile itself (not its block size) as a shape entry")
        else:
            raise ShapeError(f"shape entries must be ints or tiles, got {type(s).__name__}")
    return tuple(out)


def full_like_shape(shape, value, dtype):
    if isinstance(value, DeviceValue):
        return expand(to(value, dtype), shape)
    return apply("full", shape=tuple(shape), value=value, dtype=dtype)


def _shape_args(size):
    return size[0] if len(size) == 1 and isinstance(size[0], (list, tuple, torch.Size)) else size


@op("zeros", method=False)
def zeros(*size, dtype=None, **kwargs):
    return full_like_shape(shape_entries(_shape_args(size)), 0, dtype or torch.float32)


@op("ones", method=False)
def ones(*size, dtype=None, **kwargs):
    return full_like_shape(shape_entries(_shape_args(size)), 1, dtype or torch.float32)


@op("empty", method=False)
def empty(*size, dtype=None, **kwargs):
    return zeros(*size, dtype=dtype)


@op("full", method=False)
def full(size, fill_value, *, dtype=None, **kwargs):
    if dtype is None:
        dtype = torch.float32 if isinstance(fill_value, float) else (torch.bool if isinstance(fill_value, bool) else torch.int64)
    return full_like_shape(shape_entries(size), fill_value, dtype)


@op("zeros_like", "empty_like", method=False)
def zeros_like(x, *, dtype=None, **kwargs):
    return full_like_shape(x.shape, 0, dtype or x.dtype)


@op("ones_like", method=False)
def ones_like(x, *, dtype=None, **kwargs):
    return full_like_shape(x.shape, 1, dtype or x.dtype)


@op("full_like", method=False)
def full_like(x, fill_value, *, dtype=None, **kwargs):
    return full_like_shape(x.shape, fill_value, dtype or x.dtype)


@op("new_zeros", "new_empty")
def new_zeros(x, size, *, dtype=None, **kwargs):
    return full_like_shape(shape_entries(size), 0, dtype or x.dtype)


@op("new_full")
def new_full(x, size, fill_value, *, dtype=None, **kwargs):
    return full_like_shape(shape_entries(size), fill_value, dtype or x.dtype)


@op("arange", method=False)
def arange(start, end=None, step=1, *, dtype=None, **kwargs):
    if end is None:
        start, end = 0, start
    if step != 1 or not all(isinstance(v, int) for v in (start, end)):
        raise ShapeError("arange inside a tile loop needs static int bounds and step 1")
    return apply("iota", start=start, stop=end, dtype=dtype or torch.int32)
