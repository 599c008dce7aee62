"""Arguments with structure: lists and tuples (with tensors inside) and functions traced inline."""
from __future__ import annotations

import dataclasses
from collections import namedtuple

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ArgumentError
from tilefn.testing import compile_for_gpu
from tilefn.trace.arguments import arg_key, functions_in, path_source, read, replace, tensor_leaves

OFFSET = 0.25
GLOBAL_BIAS = torch.randn(33)


def make_epilogue(bias, scale):
    return lambda acc, tile: acc * scale + bias[tile]


def test_a_function_key_is_its_code_and_captured_values():
    bias = torch.randn(8)
    same = arg_key(make_epilogue(bias, 2.0), "f")
    assert arg_key(make_epilogue(torch.randn(8), 2.0), "f") == same  # a new lambda, same code and metadata
    assert arg_key(make_epilogue(bias, 3.0), "f") == same  # a captured float is a runtime value
    assert arg_key(make_epilogue(bias, 3.0), "f", static_floats=True) != arg_key(make_epilogue(bias, 2.0), "f",
                                                                                  static_floats=True)
    assert arg_key(make_epilogue(bias, 3), "f") != same  # an int is static
    assert arg_key(make_epilogue(bias.double(), 2.0), "f") != same
    assert arg_key(lambda acc, tile: acc * 2.0 + bias[tile], "f") != same  # other code


def test_a_function_key_follows_the_globals_it_reads(monkeypatch):
    def shifted(acc, tile):
        return acc + OFFSET

    before = arg_key(shifted, "f")
    monkeypatch.setattr(__import__(__name__), "OFFSET", 0.5)
    assert arg_key(shifted, "f") != before


def test_a_recursive_closure_has_a_finite_key():
    def countdown(n):
        return 0 if n == 0 else countdown(n - 1)

    assert arg_key(countdown, "f") == arg_key(countdown, "f")
    assert functions_in(countdown) == [countdown]


def test_leaves_are_read_through_their_paths_and_replaced():
    Pair = namedtuple("Pair", "a b")
    x, y, z = torch.randn(2), torch.randn(3), torch.randn(4)
    fn = make_epilogue(z, 1.0)
    tree = [Pair(x, 1), (y, fn)]
    leaves = tensor_leaves(tree, "args")
    assert [t for _, _, t in leaves] == [x, y, z]
    assert [hint for _, hint, _ in leaves] == ["args_0_0", "args_1_0", "bias"]
    for path, _, tensor in leaves:
        assert read(tree, path) is tensor
        assert eval(path_source("tree", path), {"tree": tree}) is tensor
    new = replace(tree, {path: i for i, (path, _, _) in enumerate(leaves)})
    assert new[0] == Pair(0, 1) and type(new[0]) is Pair and new[1][0] == 1
    assert new[1][1].__closure__[0].cell_contents == 2 and fn.__closure__[0].cell_contents is z


# --- lists and tuples ----------------------------------------------------------------------------
def weighted_sum(xs, weights, shape):
    """Sum of xs[i] * weights[i], for a tuple of tensors and a list of floats; `shape` is static."""
    out = torch.empty(shape, dtype=xs[0].dtype, device=xs[0].device)
    for t in tl.tile(shape[0]):
        acc = xs[0][t] * weights[0]
        for x, w in zip(xs[1:], weights[1:]):
            acc = acc + x[t] * w
        out[t] = acc
    return out


def test_tuples_of_tensors_and_lists_of_numbers_match_eager():
    xs = (torch.randn(19), torch.randn(19), torch.randn(40)[::2][:19])
    weights = [0.5, -1.0, 2.0]
    want = sum(x * w for x, w in zip(xs, weights))
    kernel = tfn.jit(weighted_sum)
    torch.testing.assert_close(kernel(xs, weights, (19,)), want)
    torch.testing.assert_close(kernel(xs, weights, (19,)), want)  # the fast path
    torch.testing.assert_close(tfn.interpret(weighted_sum)(xs, weights, [19]), want)
    other = (torch.randn(19), torch.randn(19), torch.randn(40)[::2][:19])
    torch.testing.assert_close(kernel(other, weights, (19,)), sum(x * w for x, w in zip(other, weights)))
    assert len(kernel._executables) == 1  # new tensors of the same metadata: one signature
    torch.testing.assert_close(kernel(xs[:2], [1.0, 1.0], (19,)), xs[0] + xs[1])
    torch.testing.assert_close(kernel(xs, [0.5, -1.0, 3.0], (19,)), want + xs[2])  # floats in a list: runtime
    assert len(kernel._executables) == 2


def test_a_tensor_inside_a_tuple_is_written_where_the_caller_sees_it():
    def fill(outs, x):
        for t in tl.tile(x.shape[0]):
            outs[0][t] = x[t] + 1
            outs[1][1][t] = x[t] * 2

    x, outs = torch.randn(10), (torch.empty(10), [None, torch.empty(10)])
    tfn.jit(fill)(outs, x)
    torch.testing.assert_close(outs[0], x + 1)
    torch.testing.assert_close(outs[1][1], x * 2)


@dataclasses.dataclass(frozen=True)
class Frozen:
    x: torch.Tensor
    scale: float


def test_dicts_named_tuples_and_dataclasses_hold_tensors():
    Pair = namedtuple("Pair", "a b")

    def mixed(pair, table, frozen):
        out = torch.empty_like(pair.a)
        for t in tl.tile(out.shape[0]):
            out[t] = (pair.a[t] - pair.b[t]) * table["w"][t] + frozen.x[t] * frozen.scale
        return out

    a, b, w, x = (torch.randn(21) for _ in range(4))
    args = (Pair(a, b), {"w": w}, Frozen(x, 0.5))
    want = (a - b) * w + x * 0.5
    torch.testing.assert_close(tfn.jit(mixed)(*args), want)
    torch.testing.assert_close(tfn.interpret(mixed)(*args), want)
    assert arg_key(Frozen(x, 0.5), "f") == arg_key(Frozen(x, 1.5), "f")  # a float field is a runtime value
    kernel = tfn.jit(mixed)
    for scale in (0.5, 1.5, -2.0):
        args = (Pair(a, b), {"w": w}, Frozen(x, scale))
        torch.testing.assert_close(kernel(*args), (a - b) * w + x * scale)
    assert kernel.cache_info().compiles == 1


# --- functions -----------------------------------------------------------------------------------
def apply_epilogue(x, epilogue):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = epilogue(x[t].sin(), t)
    return out


def test_a_new_lambda_with_the_same_captures_does_not_retrace_but_reads_its_own_tensor():
    kernel, x = tfn.jit(apply_epilogue), torch.randn(33)
    for scale in (2.0, 2.0, 3.0):
        bias = torch.randn(33)
        torch.testing.assert_close(kernel(x, make_epilogue(bias, scale)), x.sin() * scale + bias)
        torch.testing.assert_close(tfn.interpret(apply_epilogue)(x, make_epilogue(bias, scale)),
                                   x.sin() * scale + bias)
    assert len(kernel._programs) == 1 and len(kernel._executables) == 1  # a captured float is a runtime value


def test_a_rebound_closure_variable_of_the_same_lambda_retraces():
    kernel, x, scale = tfn.jit(apply_epilogue), torch.randn(16), 2.0

    def epilogue(acc, tile):
        return acc * scale

    torch.testing.assert_close(kernel(x, epilogue), x.sin() * 2.0)
    scale = 5.0
    torch.testing.assert_close(kernel(x, epilogue), x.sin() * 5.0)


def test_defaults_globals_nested_closures_and_builtins():
    x, extra = torch.randn(33), torch.randn(33)
    kernel = tfn.jit(apply_epilogue)

    def inner(acc, tile):
        return acc + extra[tile]

    def outer(acc, tile):
        return inner(acc, tile) * 2

    cases = [
        (lambda acc, tile, b=extra: acc - b[tile], x.sin() - extra),
        (lambda acc, tile: acc + GLOBAL_BIAS[tile] + OFFSET, x.sin() + GLOBAL_BIAS + OFFSET),
        (outer, (x.sin() + extra) * 2),
        (lambda acc, tile: torch.relu(acc), torch.relu(x.sin())),
    ]
    for epilogue, want in cases:
        torch.testing.assert_close(kernel(x, epilogue), want)
        torch.testing.assert_close(tfn.interpret(apply_epilogue)(x, epilogue), want)


def test_a_global_a_function_reads_is_read_at_each_call(monkeypatch):
    kernel, x = tfn.jit(apply_epilogue), torch.randn(33)
    epilogue = lambda acc, tile: acc + GLOBAL_BIAS[tile]  # noqa: E731
    torch.testing.assert_close(kernel(x, epilogue), x.sin() + GLOBAL_BIAS)
    other = torch.randn(33)
    monkeypatch.setattr(__import__(__name__), "GLOBAL_BIAS", other)
    torch.testing.assert_close(kernel(x, epilogue), x.sin() + other)


def test_a_function_called_on_the_host_allocates():
    def run(x, alloc):
        out = alloc(x)
        for t in tl.tile(x.shape[0]):
            out[t] = x[t].cos()
        return out

    x = torch.randn(12)
    torch.testing.assert_close(tfn.jit(run)(x, lambda v: torch.empty_like(v)), x.cos())


def test_a_function_argument_compiles_for_hopper():
    bias = torch.randn(64)
    compiled = compile_for_gpu(apply_epilogue, torch.randn(64), make_epilogue(bias, 2.0))
    assert "ld.global" in compiled.asm["ptx"]


def test_an_object_a_kernel_cannot_take_inside_a_tuple_names_where():
    with pytest.raises(ArgumentError, match=r"argument `xs` of weighted_sum\(\) holds at \[1\] a object"):
        tfn.jit(weighted_sum)((torch.randn(4), object()), [1.0, 1.0], (4,))
