"""Inputs the issue-12 torch ops refuse: where torch refuses, tilefn refuses too, with an error that
names the user's line and says what to do; shapes tilefn cannot express are named the same way."""
import math

import pytest
import torch
import torch.nn.functional as F

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ShapeError, TracingError


def trace_rows(fn, x):
    """Trace `out[tm, :] = fn(x[tm, :])` (only tracing: the errors come from it)."""
    def kernel(x):
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
        for tm in tl.tile(x.shape[0]):
            out[tm, :] = fn(x[tm, :])
        return out

    return tfn.make_ir(kernel)(x)


X_INT, X_FLOAT = torch.arange(8, dtype=torch.int32).reshape(2, 4), torch.randn(2, 4)

REFUSED_AS_IN_TORCH = {  # name -> (op, input, the error tilefn gives, a fragment of its message)
    "softmax_of_ints": (lambda v: torch.softmax(v, 1), X_INT, TracingError, "softmax is not implemented for torch.int32"),
    "log_softmax_of_bools": (lambda v: F.log_softmax(v, -1), X_INT > 2, TracingError, "log_softmax"),
    "var_of_ints": (lambda v: v.var(1), X_INT, TracingError, "std and var only support floating point"),
    "std_mean_of_ints": (lambda v: torch.std_mean(v, 1)[0], X_INT, TracingError, "std and var"),
    "lerp_of_ints": (lambda v: torch.lerp(v, v, 0.5), X_INT, TracingError, "lerp is not defined for torch.int32"),
    "lerp_dtypes_differ": (lambda v: torch.lerp(v, v.double(), 0.5), X_FLOAT, TracingError,
                           "expected dtype torch.float32 for `end`"),
    "lerp_weight_dtype": (lambda v: torch.lerp(v, v, v.double()), X_FLOAT, TracingError, "for `weight`"),
    "lerp_number_end": (lambda v: v.lerp(2.0, 0.5), X_FLOAT, TracingError, "`end` must be a tensor"),
    "masked_fill_int_mask": (lambda v: v.masked_fill(v.int(), 0.0), X_FLOAT, TracingError, "boolean masks"),
    "masked_fill_1d_value": (lambda v: v.masked_fill(v > 0, v), X_FLOAT, ShapeError, "0-dimensional value"),
    "normalize_ints": (lambda v: F.normalize(v, dim=1), X_INT, TracingError, "normalize is not implemented"),
    "flip_repeated_dim": (lambda v: v.flip(1, -1), X_FLOAT, ShapeError, "more than once"),
    "stack_unequal": (lambda v: torch.stack([v, v.sum(1, keepdim=True)]), X_FLOAT, ShapeError, "equal size"),
    "cat_rank_differs": (lambda v: torch.cat([v, v.sum(1)], 1), X_FLOAT, ShapeError, "must match except"),
    "cat_zero_d": (lambda v: torch.cat([v.sum(), v.sum()]), X_FLOAT, ShapeError, "zero-dimensional"),
}


@pytest.mark.parametrize("name", sorted(REFUSED_AS_IN_TORCH))
def test_refused_as_torch_refuses(name):
    fn, x, error, message = REFUSED_AS_IN_TORCH[name]
    with pytest.raises((RuntimeError, TypeError, NotImplementedError, ValueError, IndexError)):
        fn(x)  # eager torch refuses the same input
    with pytest.raises(error, match=message) as info:
        trace_rows(fn, x)
    assert "test_torch_op_refusals.py:" in str(info.value)  # the user's line


NOT_EXPRESSIBLE = {  # valid torch, but shapes tilefn's values cannot take (the message says what to do)
    "cat_along_a_tile": (lambda v: torch.cat([v, v], 0), "tiles cannot be concatenated"),
    "split_not_two": (lambda v: tl.split(v), "last dimension has size 2"),
    "join_dtypes_differ": (lambda v: tl.join(v, v.double()), "one dtype"),
    "join_shapes": (lambda v: tl.join(v, v.reshape(v.shape[0], 2, 2)), "don't broadcast"),
}


@pytest.mark.parametrize("name", sorted(NOT_EXPRESSIBLE))
def test_unexpressible_shapes_are_clear_errors(name):
    fn, message = NOT_EXPRESSIBLE[name]
    with pytest.raises((ShapeError, TracingError), match=message) as info:
        trace_rows(fn, X_FLOAT)
    assert "test_torch_op_refusals.py:" in str(info.value)


def test_softmax_of_ints_with_a_float_dtype_is_allowed_as_in_torch():
    def kernel(x):
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
        for tm in tl.tile(x.shape[0]):
            out[tm, :] = torch.softmax(x[tm, :], dim=1, dtype=torch.float32)
        return out

    got = tfn.interpret(kernel, config=tfn.Config(block_sizes=[1]))(X_INT)
    torch.testing.assert_close(got, torch.softmax(X_INT, 1, dtype=torch.float32))


def test_var_method_is_torch_var_not_the_proxy_ir_variable():
    def kernel(x):
        out = torch.empty([x.shape[0]], dtype=x.dtype, device=x.device)
        for tm in tl.tile(x.shape[0]):
            out[tm] = x[tm, :].var(1, True) + x[tm, :].var(dim=1, unbiased=False)
        return out

    x = torch.randn(5, 7)
    got = tfn.interpret(kernel, config=tfn.Config(block_sizes=[2]))(x)
    torch.testing.assert_close(got, x.var(1, True) + x.var(dim=1, unbiased=False))


def test_var_with_more_correction_than_elements_is_nan_or_inf_as_in_torch():
    x = torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    got = tfn.interpret(_var_c3, config=tfn.Config(block_sizes=[2]))(x)
    expected = torch.var(x, 1, correction=3)
    assert math.isinf(got[0]) and math.isnan(got[1])
    torch.testing.assert_close(got, expected, equal_nan=True)


def _var_c3(x):
    out = torch.empty([x.shape[0]], dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.shape[0]):
        out[tm] = torch.var(x[tm, :], 1, correction=3)
    return out
