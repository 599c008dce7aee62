"""Softmax, vector norms and normalisations, decomposed into torch ops on device values (in float32 for halves)."""
from __future__ import annotations

import math

import torch

from ...errors import TracingError
from ..proxies import op
from .casts import to, upcast, value_of
from .reductions import amax, amin, mean, shift_of, sum_


def _floating(name, x, dtype=None):
    """`x`, refused as torch refuses an integer or bool input (unless `dtype` makes it a float first)."""
    x = value_of(x)
    if not (dtype or x.dtype).is_floating_point:
        raise TracingError(f"torch.{name} is not implemented for {x.dtype} values (as in PyTorch); "
                           f"pass dtype=torch.float32 or cast the input (.float())")
    return x


@op("softmax")
def softmax(x, dim=None, dtype=None, _stacklevel=3):
    xf = upcast(_floating("softmax", x, dtype))
    if dtype is not None:
        xf = to(xf, dtype)
    e = torch.exp(xf - shift_of(amax(xf, dim, keepdim=True)))
    return to(e / sum_(e, dim, keepdim=True), dtype or x.dtype)


@op("log_softmax")
def log_softmax(x, dim=None, dtype=None, _stacklevel=3):
    xf = upcast(_floating("log_softmax", x, dtype))
    if dtype is not None:
        xf = to(xf, dtype)
    shifted = xf - shift_of(amax(xf, dim, keepdim=True))
    out = shifted - torch.log(sum_(torch.exp(shifted), dim, keepdim=True))
    return to(out, dtype or x.dtype)


def vector_norm(x, p=2.0, dim=None, keepdim=False):
    """The p-norm over `dim` (all axes when None), computed in float32 for halves, in x's dtype."""
    x = _floating("norm", x)
    xf = upcast(x)
    if p == 2:
        out = torch.sqrt(sum_(xf * xf, dim, keepdim=keepdim))
    elif p == 1:
        out = sum_(torch.abs(xf), dim, keepdim=keepdim)
    elif p == math.inf:
        out = amax(torch.abs(xf), dim, keepdim=keepdim)
    elif p == -math.inf:
        out = amin(torch.abs(xf), dim, keepdim=keepdim)
    elif p == 0:
        out = sum_(to(xf != 0, xf.dtype), dim, keepdim=keepdim)
    else:
        out = sum_(torch.abs(xf) ** p, dim, keepdim=keepdim) ** (1.0 / p)
    return to(out, x.dtype)


@op("norm")
def norm(x, p="fro", dim=None, keepdim=False, dtype=None, out=None):
    if out is not None:
        raise TracingError("torch.norm(..., out=) is not supported inside a tile loop; assign the result")
    if dtype is not None:
        x = to(value_of(x), dtype)
    if p == "fro":
        p = 2
    if not isinstance(p, (int, float)):
        raise TracingError(f"torch.norm(p={p!r}) is not supported inside a tile loop; use a number (2, 1, inf, ...)")
    return vector_norm(x, p, dim, keepdim)


@op("linalg_vector_norm", method=False)
def linalg_vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):  # noqa: A002 - torch's name
    if out is not None:
        raise TracingError("torch.linalg.vector_norm(..., out=) is not supported inside a tile loop; assign the result")
    return norm(x, ord, dim, keepdim, dtype)


@op("normalize", method=False)
def normalize(x, p=2.0, dim=1, eps=1e-12, out=None):
    """x / max(norm_p(x, dim), eps), as torch.nn.functional.normalize."""
    if out is not None:
        raise TracingError("F.normalize(..., out=) is not supported inside a tile loop; assign the result")
    x = _floating("normalize", x)
    return x / torch.clamp_min(vector_norm(x, p, dim, keepdim=True), eps)


def _norm_axes(x, normalized_shape):
    count = len(normalized_shape) if isinstance(normalized_shape, (list, tuple, torch.Size)) else 1
    return list(range(x.ndim - count, x.ndim))


@op("layer_norm", method=False)
def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    xf = upcast(x)
    axes = _norm_axes(x, normalized_shape)
    mu = mean(xf, axes, keepdim=True)
    centered = xf - mu
    out = centered * torch.rsqrt(mean(centered * centered, axes, keepdim=True) + eps)
    if weight is not None:
        out = out * upcast(weight)
    if bias is not None:
        out = out + upcast(bias)
    return to(out, x.dtype)


@op("rms_norm", method=False)
def rms_norm(x, normalized_shape, weight=None, eps=None):
    xf = upcast(x)
    eps = torch.finfo(xf.dtype).eps if eps is None else eps  # PyTorch: the eps of the math dtype
    out = xf * torch.rsqrt(mean(xf * xf, _norm_axes(x, normalized_shape), keepdim=True) + eps)
    if weight is not None:
        out = out * upcast(weight)
    return to(out, x.dtype)
