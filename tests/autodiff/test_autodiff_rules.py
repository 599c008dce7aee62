"""The transpose table: which primitives tfn.vjp differentiates, each pointwise rule against torch
autograd, and the error for a primitive it cannot differentiate."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.autodiff.kernel import STRUCTURAL
from tilefn.autodiff.rules import NO_GRADIENT, TRANSPOSE
from tilefn.errors import UnsupportedOp
from tilefn.trace import primitives as p
from tilefn.trace.primitives import P

DIFFERENTIATED = {
    "neg", "exp", "exp2", "log", "log2", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tan",
    "tanh", "sigmoid", "erf", "abs", "add", "sub", "mul", "div", "pow", "maximum", "minimum", "fmax", "fmin",
    "where", "convert", "reduce_sum", "reduce_max", "reduce_min", "broadcast_to", "expand_dims", "squeeze",
    "reshape", "permute", "dot"}
CONSTANT = {*NO_GRADIENT, "argmax", "argmin", "full", "iota", "tile_index", "tile_begin", "tile_end", "tile_id",
            "tile_len", "tile_count", "block_size", "stop_gradient", "rand", "randn", "randint", "rand4x", "rng_seed"}
REFUSED = {"floordiv", "remainder", "fmod", "atan2", "erfinv", "reduce_prod", "cumsum", "cumprod", "associative_scan",
           "combine_reduce", "sort", "topk", "gather", "stack", "split", "concat", "flip", "lanes_view",
           "lanes_merge", "cond", "while", "signal", "wait", *(f"atomic_{n}" for n in ("and", "or", "xor", "max", "min", "xchg", "cas"))}


def test_every_primitive_is_differentiated_constant_structural_or_refused():
    names = set(P)
    assert {str(prim) for prim in TRANSPOSE} == DIFFERENTIATED | CONSTANT
    assert {str(prim) for prim in STRUCTURAL} == {"kernel", "loop", "load", "store", "atomic_add", "host"}
    assert names - DIFFERENTIATED - CONSTANT - {str(prim) for prim in STRUCTURAL} == REFUSED


def pointwise_kernel(fn, arity):
    @tfn.jit
    def kernel(x, y):
        out = torch.empty_like(x)
        for tile in tl.tile(x.shape):
            out[tile] = fn(x[tile]) if arity == 1 else fn(x[tile], y[tile])
        return out

    return kernel


POINTWISE = sorted((str(prim) for prim in p.POINTWISE if str(prim) in DIFFERENTIATED | set(NO_GRADIENT)
                    and str(prim) not in ("where",)), key=str)
BOOL_RESULTS = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "logical_not",
                "isnan", "isinf", "isfinite"}
INTEGER_ONLY = {"bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "lshift", "rshift"}


@pytest.mark.parametrize("name", [n for n in POINTWISE if n not in BOOL_RESULTS | INTEGER_ONLY])
def test_pointwise_rule_matches_torch_autograd(name):
    fn = p.POINTWISE[P[name]]
    arity = 1 if P[name] in p.UNARY else 2
    torch.manual_seed(0)
    x = torch.rand(5, 7, dtype=torch.float64) + 0.5  # (0.5, 1.5): in every function's domain, no ties
    y = torch.rand(5, 7, dtype=torch.float64) + 0.5
    g = torch.randn(5, 7, dtype=torch.float64)
    got = tfn.interpret(tfn.vjp(pointwise_kernel(fn, arity)))(x, y, g)
    xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()
    out = fn(xs) if arity == 1 else fn(xs, ys)
    want = torch.autograd.grad(out, (xs, ys), g, allow_unused=True, materialize_grads=True)
    torch.testing.assert_close(got[0], want[0])
    if arity == 1:
        assert got[1] is None  # (an input the kernel never reads gets no gradient)
    else:
        torch.testing.assert_close(got[1], want[1])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_ties_split_the_cotangent_as_torch_does(name):
    x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 1.0, 4.0]], dtype=torch.float64)
    g = torch.ones_like(x)
    got = tfn.vjp(pointwise_kernel(getattr(torch, name), 2))(x, y, g)
    xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()
    want = torch.autograd.grad(getattr(torch, name)(xs, ys), (xs, ys), g)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@tfn.jit
def row_max_and_where(x, y):
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        row = x[tm, :]
        top = torch.amax(row, dim=1, keepdim=True)
        out[tm, :] = torch.where(row > 0, row * top, y[tm, :]) + torch.amin(row, dim=1)[:, None]
    return out


def test_reductions_with_ties_and_where():
    x = torch.tensor([[1.0, 3.0, 3.0, -1.0], [-2.0, 0.5, -2.0, 0.25]], dtype=torch.float64)
    y = torch.randn(2, 4, dtype=torch.float64)
    g = torch.randn(2, 4, dtype=torch.float64)
    got = tfn.vjp(row_max_and_where)(x, y, g)
    xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()
    ref = torch.where(xs > 0, xs * xs.amax(1, keepdim=True), ys) + xs.amin(1, keepdim=True)
    want = torch.autograd.grad(ref, (xs, ys), g)
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])


@tfn.jit
def running_sum(x):
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = torch.cumsum(x[tm, :], dim=1)
    return out


def test_a_primitive_without_a_rule_is_refused_naming_it_and_the_line():
    x, g = torch.randn(3, 5), torch.randn(3, 5)
    with pytest.raises(UnsupportedOp, match="no backward for the primitive `cumsum`") as info:
        tfn.vjp(running_sum)(x, g)
    assert info.value.source.lineno == running_sum.fn.__code__.co_firstlineno + 4  # (the decorator line first)
    assert "torch.cumsum(x[tm, :], dim=1)" in str(info.value)
