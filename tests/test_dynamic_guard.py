"""The generated fast-path check of a static_shapes=False executable: any sizes of the same dynamic
signature pass; another layout class, dtype, divisibility fact or guard outcome does not."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl


def scaled(x, factor: float):
    m, n = x.shape
    out = torch.empty_like(x)
    big = m > 100  # a host decision: a guard in the Program
    for tm, tn in tl.tile([m, n]):
        out[tm, tn] = x[tm, tn] * (factor if big else 2 * factor)
    return out


def test_the_fast_path_check_admits_new_sizes_of_the_same_signature_only():
    kernel = tfn.jit(scaled, static_shapes=False)
    x = torch.randn(40, 32)
    torch.testing.assert_close(kernel(x, 1.5), x * 3.0)
    check = kernel._executables.last[0]
    assert check((torch.randn(7, 48), 1.5))  # other sizes, same divisibility of the inner size
    assert not check((torch.randn(7, 40), 1.5))  # 40 is not a multiple of 16: another signature
    assert not check((torch.randn(7, 48).t(), 1.5))  # another layout class
    assert not check((torch.randn(7, 48, dtype=torch.float64), 1.5))
    assert not check((torch.randn(200, 48), 1.5))  # the guard m <= 100 fails
    big = torch.randn(200, 32)
    torch.testing.assert_close(kernel(big, 1.5), big * 1.5)
    assert kernel.cache_info().traces == 2


def row_scaled(x, w):
    m, n = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        out[tm, :] = x[tm, :] * w[None, :]  # a whole row: its width is pinned (a guard `s1 == n`)
    return out


def test_sizes_a_guard_pins_are_compared_with_the_strides_they_fix():
    kernel = tfn.jit(row_scaled, static_shapes=False)
    x, w = torch.randn(5, 64), torch.randn(64)
    torch.testing.assert_close(kernel(x, w), x * w)
    check = kernel._executables.last[0]
    assert "is_contiguous" not in "\n".join(check.guard_lines)  # (TensorGuards compares the fixed strides)
    assert check((torch.randn(9, 64), w)) and check((torch.randn(1, 64), w))
    assert not check((torch.randn(9, 48), torch.randn(48)))  # another pinned width: another Program
    assert not check((torch.randn(9, 128)[:, :64], w))  # rows apart: another layout class
    assert not check((torch.randn(64, 9).t(), w))  # columns apart
    for other in (torch.randn(7, 128)[:, :64], torch.randn(64, 7).t(), torch.randn(3, 64)):
        torch.testing.assert_close(kernel(other, w), other * w)


def row_scaled_big(x, w):
    m, _ = x.shape
    out = torch.empty_like(x)
    big = m * w.shape[0] > 640  # a guard reading w's pinned size beside a dynamic one
    for tm in tl.tile(m):
        out[tm, :] = x[tm, :] * (w[None, :] if big else 2 * w[None, :])
    return out


def test_pinned_sizes_are_left_to_tensor_guards_but_read_where_another_guard_needs_them():
    kernel = tfn.jit(row_scaled_big, static_shapes=False)
    x, w = torch.randn(5, 64), torch.randn(64)
    torch.testing.assert_close(kernel(x, w), 2 * x * w)
    check = kernel._executables.last[0]
    lines = "\n".join(check.guard_lines)
    assert "== 64" not in lines  # (the pinned sizes: TensorGuards compares them)
    assert "s2, = a1.shape" in lines  # (w's size is pinned, but the guard m * k > 640 reads it)
    assert check((torch.randn(10, 64), w)) and not check((torch.randn(11, 64), w))
    assert not check((torch.randn(5, 48), torch.randn(48)))
    for rows in (1, 10, 11, 40):
        other = torch.randn(rows, 64)
        torch.testing.assert_close(kernel(other, w), other * w * (1 if rows * 64 > 640 else 2))
