"""Softmax and normalisations, decomposed into torch ops on device values (in float32 for halves)."""
from __future__ import annotations

import torch

from ..proxies import op
from .casts import to, upcast, value_of
from .reductions import amax, mean, sum_


@op("softmax")
def softmax(x, dim=None, dtype=None, _stacklevel=3):
    xf = upcast(value_of(x))
    if dtype is not None:
        xf = to(xf, dtype)
    e = torch.exp(xf - amax(xf, dim, keepdim=True))
    return to(e / sum_(e, dim, keepdim=True), dtype or x.dtype)


@op("log_softmax")
def log_softmax(x, dim=None, dtype=None, _stacklevel=3):
    xf = upcast(value_of(x))
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
