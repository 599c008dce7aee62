"""A kernel's fast path: its last call's guard and host function inlined into one generated function."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ArgumentError
from tilefn.fast_path import MISS, fast_path


def scaled_rows(x, factor: float):
    m, n = x.shape
    out = torch.empty_like(x)
    for tm, tn in tl.tile([m, n]):
        out[tm, tn] = x[tm, tn] * factor
    return out


def double_into(dst, src):
    for t in tl.tile(src.shape[0]):
        dst[t] = src[t] * 2


def shadowing(x, _check: float):  # a parameter named like one of the guard's globals
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * _check
    return out


@pytest.mark.parametrize("static_shapes", [True, False])
def test_the_fast_path_is_one_generated_function_that_runs_the_kernel(static_shapes):
    kernel = tfn.jit(scaled_rows, static_shapes=static_shapes)
    x = torch.randn(6, 20)
    torch.testing.assert_close(kernel(x, 1.5), x * 1.5)
    fast = kernel._executables.fast
    assert fast.__code__.co_filename == "<tilefn fast path scaled_rows>"
    again = torch.randn(6, 20)
    torch.testing.assert_close(fast((again, -2.0)), again * -2.0)
    assert fast((torch.randn(6, 20, dtype=torch.float64), 1.5)) is MISS
    assert fast((again,)) is MISS and fast(None) is MISS


def test_a_dynamic_fast_path_reads_each_calls_sizes():
    kernel = tfn.jit(scaled_rows, static_shapes=False)
    kernel(torch.randn(6, 20), 1.5)
    fast = kernel._executables.fast
    for m in (1, 7, 13, 40):  # sizes the guard admits: the host code must launch for these, not the first
        x = torch.randn(m, 20)
        out = fast((x, 3.0))
        assert out is not MISS and out.shape == (m, 20)
        torch.testing.assert_close(out, x * 3.0)
    assert kernel.cache_info().compiles == 1


def test_an_error_of_the_host_code_on_the_fast_path_reaches_the_caller():
    kernel = tfn.jit(double_into)
    a = torch.arange(20.0)
    kernel(a[1:10], a[11:20])  # disjoint: remembered behind the fast path
    torch.testing.assert_close(a[1:10], torch.arange(11.0, 20.0) * 2)
    base = torch.arange(12.0)
    with pytest.raises(ArgumentError, match="`dst` and `src`"):  # the same signature, but overlapping
        kernel._executables.fast((base[2:11], base[1:10]))
    assert torch.equal(base, torch.arange(12.0))


def test_a_host_name_that_would_shadow_the_guard_keeps_the_two_functions():
    kernel = tfn.jit(shadowing)
    x = torch.randn(9)
    torch.testing.assert_close(kernel(x, 2.0), x * 2.0)
    fast = kernel._executables.fast
    assert fast.__code__.co_filename != "<tilefn fast path shadowing>"
    out = fast((x, 4.0))
    assert out is not MISS
    torch.testing.assert_close(out, x * 4.0)


def test_a_guard_or_executable_that_is_not_generated_is_composed():
    calls = []
    fast = fast_path(lambda args: args[0] > 0, lambda value: calls.append(value) or value * 10)
    assert fast((2,)) == 20 and fast((-1,)) is MISS and calls == [2]


def test_each_address_the_guard_reads_is_passed_to_the_launch_without_reading_it_again(monkeypatch):
    from tilefn.signature_cache import last_call_guard

    launched = []
    host = ("def add_host(x, y):\n    out = torch.empty_like(x)\n"
            "    _launch((1, 1, 1), x.data_ptr(), y.data_ptr(), out.data_ptr())\n    return out\n")
    namespace = {"torch": torch, "_launch": lambda grid, *addresses: launched.append(addresses)}
    exec(host, namespace)
    executable = namespace["add_host"]
    executable.host_source, executable.size_reads = host, ()
    x, y = torch.randn(64), torch.randn(64)
    fast = fast_path(last_call_guard((x, y)), executable)
    reads = []
    real = torch.Tensor.data_ptr
    monkeypatch.setattr(torch.Tensor, "data_ptr", lambda t: reads.append(t) or real(t))
    out = fast((x, y))
    assert launched == [(real(x), real(y), real(out))]
    assert [r is x for r in reads].count(True) == 1 and [r is y for r in reads].count(True) == 1
    assert fast((x[1:], y)) is MISS  # (an address off the 16-byte alignment the kernel assumed)
