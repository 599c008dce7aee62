"""The jit's call path: per-signature compilation and the fast guard for repeated signatures."""
import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.jit import last_call_guard


@tfn.jit
def scale(x, factor: float):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * factor
    return out


def test_guard_accepts_the_same_signature_only():
    x = torch.randn(32)
    guard = last_call_guard((x, 2.0))
    assert guard((torch.randn(32), 2.0))
    assert not guard((torch.randn(33), 2.0))
    assert not guard((torch.randn(32, dtype=torch.float64), 2.0))
    assert not guard((torch.randn(64)[::2], 2.0))
    assert not guard((torch.randn(32), 3.0))
    assert not guard((torch.randn(32), 2))  # an int is another static signature
    assert not guard((torch.randn(32),))
    assert not guard(([1.0] * 32, 2.0))


def test_guard_checks_the_alignment_it_was_compiled_for():
    aligned = torch.randn(33)[:32]
    guard = last_call_guard((aligned,))
    assert not guard((torch.randn(33)[1:],))  # 4 bytes off a 16-byte boundary
    unaligned_guard = last_call_guard((torch.randn(33)[1:],))
    assert unaligned_guard((aligned,))  # code that assumes nothing runs on aligned data too


@pytest.mark.parametrize("n", [7, 32])
def test_alternating_signatures_give_the_right_answers(n):
    kernel = tfn.jit(scale.fn)
    x = torch.randn(n)
    for factor, tensor in [(2.0, x), (3.0, x), (2.0, x.double()), (2.0, torch.randn(n + 1)[1:]), (2.0, x)]:
        torch.testing.assert_close(kernel(tensor, factor), tensor * factor)
    assert len(kernel._executables) == 4
