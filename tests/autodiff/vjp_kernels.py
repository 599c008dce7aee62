"""Kernels the autodiff tests differentiate, each with its eager definition and inputs (float64 math
throughout, so derived gradients meet torch autograd's at float64 tolerances)."""
from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

import tilefn as tfn
from tilefn import lang as tl
import kernels


@tfn.jit
def pointwise_chain(x, y):
    out = torch.empty_like(x)
    for tile in tl.tile(x.shape):
        a, b = x[tile], y[tile]
        out[tile] = torch.tanh(a) * torch.exp(b) + torch.sigmoid(a * b) - a / (1.5 + b * b)
    return out


def pointwise_chain_ref(x, y):
    return torch.tanh(x) * torch.exp(y) + torch.sigmoid(x * y) - x / (1.5 + y * y)


@tfn.jit
def geglu(a, b):
    out = torch.empty_like(a)
    for tile in tl.tile(a.shape):
        out[tile] = F.gelu(a[tile], approximate="tanh") * b[tile]
    return out


@tfn.jit
def swiglu(a, b):
    out = torch.empty_like(a)
    for tile in tl.tile(a.shape):
        out[tile] = F.silu(a[tile]) * b[tile]
    return out


softmax = tfn.jit(kernels.softmax)


@tfn.jit
def log_softmax(x):
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = torch.log_softmax(x[tm, :], dim=1)
    return out


@tfn.jit
def rms_norm(x, weight, eps: float = 1e-6):
    m, n = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        out[tm, :] = F.rms_norm(x[tm, :], [n], weight[:], eps)
    return out


@tfn.jit
def layer_norm(x, weight, bias, eps: float = 1e-5):
    m, n = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        out[tm, :] = F.layer_norm(x[tm, :], [n], weight[:], bias[:], eps)
    return out


@tfn.jit
def cross_entropy(logits, labels):
    n, v = logits.shape
    losses = torch.empty([n], dtype=logits.dtype, device=logits.device)
    flat_logits = logits.view(-1)
    for tn in tl.tile(n):
        lse = torch.logsumexp(logits[tn, :], dim=1)
        losses[tn] = lse - flat_logits[tn.index * v + labels[tn]]
    return losses.mean()


@tfn.jit
def embedding(indices, weight):
    flat = indices.reshape(-1)
    num, dim = flat.shape[0], weight.shape[1]
    out = torch.empty([num, dim], dtype=weight.dtype, device=weight.device)
    for tb, td in tl.tile([num, dim]):
        out[tb, td] = weight[flat[tb], td]
    return out.view(*indices.shape, dim)


@tfn.jit
def matmul(x, y):
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=x.dtype)
        for tk in tl.tile(k):
            acc = torch.addmm(acc, x[tm, tk], y[tk, tn])
        out[tm, tn] = acc
    return out


@tfn.jit
def matmul_tanh(x, y):
    """A product with a nonlinear epilogue: the backward runs the k loop twice (the product, then its transpose)."""
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=x.dtype)
        for tk in tl.tile(k):
            acc = acc + x[tm, tk] @ y[tk, tn]
        out[tm, tn] = torch.tanh(acc)
    return out


@tfn.jit
def bmm(x, y):
    b, m, k = x.shape
    _, _, n = y.shape
    out = torch.empty([b, m, n], dtype=x.dtype, device=x.device)
    for tb, tm, tn in tl.tile([b, m, n]):
        acc = tl.zeros([tb, tm, tn], dtype=x.dtype)
        for tk in tl.tile(k):
            acc = torch.baddbmm(acc, x[tb, tm, tk], y[tb, tk, tn])
        out[tb, tm, tn] = acc
    return out


@tfn.jit
def scaled_row_sum(x, w):
    """An inner loop whose body reads a value loaded outside it (`scale`: its cotangent is carried)."""
    m, n = x.shape
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        scale = w[tm]
        acc = tl.zeros([tm], dtype=x.dtype)
        for tn in tl.tile(n):
            acc = acc + torch.sum(torch.exp(x[tm, tn]) * scale[:, None], dim=1)
        out[tm] = acc
    return out


@tfn.jit
def scaled_columns(x, w):
    """An inner loop without carries that stores per column tile (its backward loop stores per tile too)."""
    m, n = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        scale = torch.sigmoid(w[tm])
        for tn in tl.tile(n):
            out[tm, tn] = x[tm, tn] * x[tm, tn] * scale[:, None]
    return out


@attrs.frozen
class Case:
    name: str
    kernel: object
    reference: object
    inputs: object  # (draw a size, dtype) -> the kernel's arguments
    differentiable: tuple  # positions of the arguments that get a gradient


def _rows(draw, dtype, extra=()):
    m, n = draw(2, 9), draw(2, 40)
    return (torch.randn(m, n, dtype=dtype), *(f(n, dtype) for f in extra))


def _vector(n, dtype):
    return torch.randn(n, dtype=dtype)


def _two(draw, dtype):
    m, n = draw(1, 9), draw(1, 40)
    return torch.randn(m, n, dtype=dtype), torch.randn(m, n, dtype=dtype)


def _cross_entropy_inputs(draw, dtype):
    n, v = draw(1, 9), draw(2, 40)
    return torch.randn(n, v, dtype=dtype), torch.randint(0, v, (n,))


def _embedding_inputs(draw, dtype):
    rows = draw(1, 12)
    return torch.randint(0, rows, (draw(1, 4), draw(1, 5))), torch.randn(rows, draw(1, 20), dtype=dtype)


def _matmul_inputs(draw, dtype):
    m, k, n = draw(1, 20), draw(1, 40), draw(1, 20)
    return torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)


def _scaled_rows_inputs(draw, dtype):
    m, n = draw(1, 9), draw(1, 70)
    return torch.randn(m, n, dtype=dtype), torch.randn(m, dtype=dtype)


def _bmm_inputs(draw, dtype):
    b, m, k, n = draw(1, 3), draw(1, 17), draw(1, 20), draw(1, 9)
    return torch.randn(b, m, k, dtype=dtype), torch.randn(b, k, n, dtype=dtype)


CASES = [
    Case("pointwise_chain", pointwise_chain, pointwise_chain_ref, _two, (0, 1)),
    Case("geglu", geglu, lambda a, b: F.gelu(a, approximate="tanh") * b, _two, (0, 1)),
    Case("swiglu", swiglu, lambda a, b: F.silu(a) * b, _two, (0, 1)),
    Case("softmax", softmax, lambda x: torch.softmax(x, 1), _rows, (0,)),
    Case("log_softmax", log_softmax, lambda x: torch.log_softmax(x, 1), _rows, (0,)),
    Case("rms_norm", rms_norm, lambda x, w: F.rms_norm(x, [x.shape[1]], w, 1e-6),
         lambda draw, dtype: _rows(draw, dtype, (_vector,)), (0, 1)),
    Case("layer_norm", layer_norm, lambda x, w, b: F.layer_norm(x, [x.shape[1]], w, b, 1e-5),
         lambda draw, dtype: _rows(draw, dtype, (_vector, _vector)), (0, 1, 2)),
    Case("cross_entropy", cross_entropy, F.cross_entropy, _cross_entropy_inputs, (0,)),
    Case("embedding", embedding, F.embedding, _embedding_inputs, (1,)),
    Case("matmul", matmul, torch.mm, _matmul_inputs, (0, 1)),
    Case("matmul_tanh", matmul_tanh, lambda x, y: torch.tanh(x @ y), _matmul_inputs, (0, 1)),
    Case("bmm", bmm, torch.bmm, _bmm_inputs, (0, 1)),
    Case("scaled_columns", scaled_columns, lambda x, w: x * x * torch.sigmoid(w)[:, None], _scaled_rows_inputs,
         (0, 1)),
    Case("scaled_row_sum", scaled_row_sum, lambda x, w: (x.exp() * w[:, None]).sum(1), _scaled_rows_inputs, (0, 1)),
]


def eager_gradients(case: Case, args, cotangent):
    """torch autograd's gradients of `case.reference` at `args` (None for the arguments that get none)."""
    leaves = [a.detach().clone().requires_grad_(True) if i in case.differentiable else a for i, a in enumerate(args)]
    grads = iter(torch.autograd.grad(case.reference(*leaves), [leaves[i] for i in case.differentiable], cotangent))
    return tuple(next(grads) if i in case.differentiable else None for i in range(len(args)))
