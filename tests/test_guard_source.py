"""The shared straight-line argument checks: count, per-argument class/value/structure tests, tensor metadata."""
from __future__ import annotations

import torch

from tilefn.guard_source import argument_lines, compile_guard, tensor_guards_check


def _guard(args, static=()):
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    check = tensor_guards_check(tensors, [list(t.shape) for t in tensors], [list(t.stride()) for t in tensors])
    namespace = {}
    return compile_guard(argument_lines(args, static, check, namespace), namespace, "<test guard>")


def test_argument_checks_follow_each_arguments_kind():
    x = torch.randn(8)
    guard = _guard((x, 2, 1.5, (3, [0.5])))
    assert guard((torch.randn(8), 2, 9.0, (3, [7.0])))  # floats, also inside structures, are runtime values
    assert not guard((torch.randn(8), 3, 1.5, (3, [0.5])))  # an int is static: by value
    assert not guard((torch.randn(8), 2, 1, (3, [0.5])))  # a runtime value by class
    assert not guard((torch.randn(8), 2, 1.5, (4, [0.5])))  # a structure by its key
    assert not guard((torch.randn(9), 2, 1.5, (3, [0.5])))  # tensor metadata
    assert not guard((x, 2, 1.5))  # the count
    assert not guard(None)  # an exception is a failed check
    assert not _guard((x, 1.5), static=(1,))((x, 2.5))  # a static position: by value
