"""Binding a call to one flat tuple per parameter, and kernels whose signatures need it."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ArgumentError
from tilefn.trace.binding import Binder


def signature(a, b=2, *, c, d=4):
    return a, b, c, d


def test_flat_applies_defaults_and_puts_keyword_only_parameters_in_order():
    binder = Binder(signature)
    assert binder.names == ("a", "b", "c", "d")
    assert binder.flat((1,), {"c": 3}) == (1, 2, 3, 4)
    assert binder.flat((1,), {"d": 5, "c": 3, "b": 0}) == (1, 0, 3, 5)
    assert binder.flat((1, 2, 3, 4), {}) == (1, 2, 3, 4)  # a flat tuple is flat already
    args, kwargs = binder.call_args((1, 2, 3, 4))
    assert signature(*args, **kwargs) == (1, 2, 3, 4)


def test_a_short_positional_call_is_filled_from_the_defaults():
    def f(a, b, c=3.0, d=None):
        return a

    binder = Binder(f)
    assert binder.flat((1, 2), {}) == (1, 2, 3.0, None)
    assert binder.flat((1, 2, 5.0), {}) == (1, 2, 5.0, None)
    with pytest.raises(ArgumentError, match=r"f\(\): missing a required argument: 'b'"):
        binder.flat((1,), {})


@pytest.mark.parametrize("args, kwargs, match", [
    ((1, 2, 3, 4, 5), {}, "too many positional arguments"),
    ((1,), {}, "missing a required argument: 'c'"),
    ((1,), {"c": 3, "e": 5}, "got an unexpected keyword argument 'e'"),
])
def test_calls_that_do_not_fit_name_the_kernel(args, kwargs, match):
    with pytest.raises(ArgumentError, match=rf"signature\(\): {match}"):
        Binder(signature).flat(args, kwargs)


def test_variadic_parameters_are_refused_with_what_to_do():
    def summed(*xs):
        return xs

    with pytest.raises(ArgumentError, match=r"summed\(\) has a variadic parameter \(xs\).*tuple parameter"):
        tfn.jit(summed)(torch.ones(4))


# --- kernels -------------------------------------------------------------------------------------
def scaled_sum(alpha: float, x, beta, y, bias=None, gamma=1.0):
    """A scalar before the tensors, a tensor after a scalar, an optional tensor, then a default."""
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        v = alpha * x[t] + beta * y[t]
        if bias is not None:
            v = v + bias[t]
        out[t] = v * gamma
    return out


def eager_scaled_sum(alpha, x, beta, y, bias=None, gamma=1.0):
    return (alpha * x + beta * y + (bias if bias is not None else 0)) * gamma


X, Y, B = torch.randn(37), torch.randn(37), torch.randn(37)
CALLS = [
    ((0.5, X, 2.0, Y), {}),
    ((0.5, X, 2.0, Y), {"gamma": 3.0}),  # a keyword after a skipped default
    ((0.5, X, 2.0), {"y": Y, "bias": B}),
    ((), {"alpha": 0.5, "x": X, "beta": 2.0, "y": Y, "bias": B, "gamma": -1.0}),
]


@pytest.mark.parametrize("args, kwargs", CALLS)
def test_scalars_before_tensors_and_defaults_match_eager(args, kwargs):
    want = eager_scaled_sum(*args, **kwargs)
    torch.testing.assert_close(tfn.jit(scaled_sum)(*args, **kwargs), want)
    torch.testing.assert_close(tfn.interpret(scaled_sum)(*args, **kwargs), want)


def test_spellings_of_one_call_share_one_executable():
    kernel = tfn.jit(scaled_sum)
    want = eager_scaled_sum(0.5, X, 2.0, Y)
    for args, kwargs in [((0.5, X, 2.0, Y), {}), ((0.5, X, 2.0, Y, None, 1.0), {}),
                         ((0.5, X), {"y": Y, "beta": 2.0}), ((0.5, X, 2.0, Y), {"gamma": 1.0})]:
        torch.testing.assert_close(kernel(*args, **kwargs), want)
    assert len(kernel._executables) == 1
    torch.testing.assert_close(kernel(0.5, X, 2.0, Y, gamma=2.0), want * 2)
    assert len(kernel._executables) == 1  # (a new float value: a runtime value)


def keyword_only(x, *, scale: float, shift=None):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * scale + (shift[t] if shift is not None else 0.0)
    return out


def test_keyword_only_parameters_are_bound_by_name():
    x, shift = torch.randn(20), torch.randn(20)
    kernel = tfn.jit(keyword_only)
    torch.testing.assert_close(kernel(x, scale=3.0), x * 3.0)
    torch.testing.assert_close(kernel(x, shift=shift, scale=-1.0), -x + shift)
    torch.testing.assert_close(kernel(x, shift=shift, scale=-1.0), -x + shift)  # the fast path
    torch.testing.assert_close(tfn.interpret(keyword_only)(x, scale=2.0, shift=shift), 2 * x + shift)
    with pytest.raises(ArgumentError, match=r"keyword_only\(\): missing a required argument: 'scale'"):
        kernel(x)


def test_a_tensor_default_is_read_at_each_call():
    weights = torch.randn(9)

    def weighted(x, w=weights):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = x[t] * w[t]
        return out

    kernel, x = tfn.jit(weighted), torch.randn(9)
    torch.testing.assert_close(kernel(x), x * weights)
    other = torch.randn(9)
    torch.testing.assert_close(kernel(x, other), x * other)
    torch.testing.assert_close(kernel(x), x * weights)
