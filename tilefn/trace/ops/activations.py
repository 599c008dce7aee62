"""Activation functions: relu, and gelu/silu/softplus decomposed into torch ops (in float32 for halves)."""
from __future__ import annotations

import math

import torch

from ..primitives import P
from ..proxies import op
from .casts import to, upcast
from .pointwise import pointwise, refuse_bool


@op("relu")
def relu(x, inplace=False):
    refuse_bool("relu", x)
    return pointwise(P["maximum"], x, 0 if not x.dtype.is_floating_point else 0.0)


@op("gelu")
def gelu(x, approximate="none"):
    xf = upcast(x)
    if approximate == "tanh":
        inner = (xf + 0.044715 * xf * xf * xf) * math.sqrt(2.0 / math.pi)
        out = 0.5 * xf * (1.0 + torch.tanh(inner))
    else:
        out = 0.5 * xf * (1.0 + torch.erf(xf * (1.0 / math.sqrt(2.0))))
    return to(out, x.dtype)


@op("silu")
def silu(x, inplace=False):
    xf = upcast(x)
    return to(xf * torch.sigmoid(xf), x.dtype)


@op("softplus")
def softplus(x, beta=1.0, threshold=20.0):
    xf = upcast(x)
    out = torch.where(xf * beta > threshold, xf, torch.log1p(torch.exp(xf * beta)) / beta)
    return to(out, x.dtype)
