"""Written arguments that alias are refused as PyTorch refuses them; allowed aliasing still works."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ArgumentError


def double_into(dst, src):
    for t in tl.tile(src.shape[0]):
        dst[t] = src[t] * 2


def torch_message(fn) -> str:
    with pytest.raises(RuntimeError) as info:
        fn()
    return str(info.value)


def test_partial_overlap_of_a_written_argument_is_refused_like_torch():
    base = torch.arange(10.0)
    want = torch_message(lambda: torch.mul(base[:-1], 2, out=base[1:]))
    with pytest.raises(ArgumentError) as info:
        tfn.jit(double_into)(base[1:], base[:-1])
    assert want in str(info.value) and "`dst` and `src`" in str(info.value)
    assert "test_aliasing.py" in str(info.value.source)  # the user's call, not a generated launcher
    assert torch.equal(base, torch.arange(10.0))  # nothing was written


def test_a_written_expanded_argument_is_refused_at_its_store():
    want = torch_message(lambda: torch.mul(torch.arange(9.0), 2, out=torch.tensor(1.0).expand(9)))
    with pytest.raises(ArgumentError) as info:
        tfn.jit(double_into)(torch.tensor(1.0).expand(9), torch.arange(9.0))
    assert want in str(info.value)
    assert info.value.source.function == "double_into"


def test_the_same_tensor_twice_and_disjoint_halves_of_one_buffer_are_allowed():
    x = torch.arange(10.0)
    tfn.jit(double_into)(x, x)
    torch.testing.assert_close(x, torch.arange(10.0) * 2)
    y = torch.arange(10.0)
    tfn.jit(double_into)(y[:5], y[5:])
    torch.testing.assert_close(y, torch.cat([torch.arange(5.0, 10.0) * 2, torch.arange(5.0, 10.0)]))


def test_read_only_arguments_may_overlap():
    base = torch.arange(10.0)
    out = torch.empty(9)

    def add_into(dst, a, b):
        for t in tl.tile(a.shape[0]):
            dst[t] = a[t] + b[t]

    tfn.jit(add_into)(out, base[1:], base[:-1])
    torch.testing.assert_close(out, base[1:] + base[:-1])
