"""Errors at lowering and at call time are clear TilefnErrors that point at the user's line; inputs
of another dtype or rank simply get their own compiled signature."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ArgumentError, TilefnError, TracingError, UnsupportedOp

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def add(x, y):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] + y[t]
    return out


def add_nd(x, y):
    out = torch.empty_like(x)
    for tiles in tl.tile(list(x.shape)):
        out[tiles] = x[tiles] + y[tiles]
    return out


def split_rows(x):
    out = torch.empty([x.shape[0], 2], dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = x[tm, :].reshape(tm, 2, x.shape[1] // 2).sum(dim=2)  # the reshape
    return out


def fixed_block(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0], block_size=12):
        out[t] = x[t]
    return out


def median_rows(x):
    out = torch.empty(x.shape[0])
    for t in tl.tile(x.shape[0]):
        out[t] = torch.median(x[t, :], dim=1).values
    return out


def points_here(exc: TilefnError, text: str):
    """The error names this file and shows the offending line."""
    assert __file__ in str(exc), str(exc)
    assert text in str(exc), str(exc)


# --- lowering errors ---------------------------------------------------------------------------
def test_reshape_of_a_non_power_of_two_dim_is_a_clear_lowering_error():
    x = torch.randn(8, 6)
    with pytest.raises(TilefnError, match="not a power of two") as info:
        tfn.jit(split_rows)(x)
    points_here(info.value, "# the reshape")
    # the reference interpreter has no such limit: the program itself is valid
    torch.testing.assert_close(tfn.interpret(split_rows)(x), x.reshape(8, 2, 3).sum(2))


def test_reshape_of_power_of_two_dims_lowers():
    x = torch.randn(8, 8)
    torch.testing.assert_close(tfn.jit(split_rows)(x), x.reshape(8, 2, 4).sum(2))


@pytest.mark.parametrize("size", [24, 0, -16])
def test_block_size_that_is_not_a_positive_power_of_two_is_a_clear_error(size):
    x = torch.randn(20)
    with pytest.raises(TilefnError, match="must be a positive power of two") as info:
        tfn.jit(add).lower(x, x, config=tfn.Config(block_sizes=[size]))
    points_here(info.value, "tfn.jit(add).lower(")


def test_fixed_block_size_that_is_not_a_power_of_two_is_a_clear_error():
    with pytest.raises(TilefnError, match=r"block size 12 \(tl.tile\(..., block_size=...\)\)"):
        tfn.jit(fixed_block)(torch.randn(20))


def test_unsupported_op_names_the_op_and_the_line():
    with pytest.raises(UnsupportedOp, match="torch.median") as info:
        tfn.jit(median_rows)(torch.randn(4, 8))
    points_here(info.value, "torch.median(x[t, :], dim=1)")


# --- call-time errors --------------------------------------------------------------------------
def test_wrong_number_of_arguments():
    kernel = tfn.jit(add)
    x = torch.randn(10)
    kernel(x, x)  # compiles one signature first: errors must not depend on the cache
    with pytest.raises(ArgumentError, match=r"add\(\): missing a required argument: 'y'") as info:
        kernel(x)
    points_here(info.value, "kernel(x)")
    with pytest.raises(ArgumentError, match="too many positional arguments"):
        kernel(x, x, x)
    with pytest.raises(ArgumentError, match="unexpected keyword argument"):
        kernel(x, y=x, z=x)


def test_argument_of_an_unsupported_type():
    x = torch.randn(10)
    with pytest.raises(ArgumentError, match="argument `y` of add\\(\\) is a set"):
        tfn.jit(add)(x, {1.0})


def test_a_list_indexed_with_a_tile_says_to_pass_a_tensor():
    with pytest.raises(TracingError, match="a tile is used as a Python int .*pass those values as a tensor"):
        tfn.jit(add)(torch.randn(10), [1.0] * 10)


def test_a_meta_argument_is_refused_before_lowering():
    """(Several devices: tests/test_errors.py, on a GPU.)"""
    with pytest.raises(ArgumentError, match="argument `y` of add\\(\\) is on the meta device"):
        tfn.jit(add)(torch.randn(10), torch.randn(10, device="meta"))


def test_shape_mismatch_points_at_the_line():
    with pytest.raises(TracingError, match=r"shapes \[t0\], \[t0, 3\] don't broadcast") as info:
        tfn.jit(add)(torch.randn(20), torch.randn(20, 3))
    points_here(info.value, "out[t] = x[t] + y[t]")


def test_errors_hide_the_tracers_frames():
    with pytest.raises(TilefnError) as info:
        tfn.jit(add)(torch.randn(20), torch.randn(20, 3))
    files = [str(entry.path) for entry in info.traceback]
    assert not [f for f in files if "/tilefn/trace/" in f], files
    assert info.value.__cause__ is None and info.value.__suppress_context__


# --- other signatures --------------------------------------------------------------------------
class CountingJit:
    """tfn.jit(fn) with a count of the signatures it lowers."""

    def __init__(self, fn):
        self.kernel = tfn.jit(fn)
        self.lowered = 0
        lower = self.kernel.lower

        def counting(*args, **kwargs):
            self.lowered += 1
            return lower(*args, **kwargs)

        self.kernel.lower = counting

    def __call__(self, *args):
        return self.kernel(*args)


def test_another_dtype_gets_its_own_signature_and_works():
    kernel = CountingJit(add)
    x32 = torch.randn(37)
    torch.testing.assert_close(kernel(x32, x32), x32 * 2)
    torch.testing.assert_close(kernel(x32 + 1, x32), x32 * 2 + 1)
    assert kernel.lowered == 1, "same signature: compiled once"
    for dtype in (torch.bfloat16, torch.float16, torch.int32, torch.float64):
        x = (torch.randn(37) * 10).to(dtype)
        out = kernel(x, x)
        assert out.dtype == dtype
        torch.testing.assert_close(out, x + x)
    assert kernel.lowered == 5
    torch.testing.assert_close(kernel(x32, x32), x32 * 2)  # the first signature is still cached
    assert kernel.lowered == 5


def test_another_rank_shape_or_layout_gets_its_own_signature_and_works():
    kernel = CountingJit(add_nd)
    for x in (torch.randn(37), torch.randn(5, 7), torch.randn(2, 3, 9), torch.randn(7, 5).t(),
              torch.randn(6, 8)[:, ::2]):
        torch.testing.assert_close(kernel(x, x), x + x)
    assert kernel.lowered == 5


def test_mixed_dtypes_promote_as_torch_does():
    x, y = torch.randn(19), torch.randn(19).to(torch.bfloat16)
    out = tfn.jit(add)(x, y)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, x + y)


def test_python_int_argument_is_specialised_and_a_float_is_not():
    def scale(x, factor):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = x[t] * factor
        return out

    kernel = CountingJit(scale)
    x = torch.randn(20)
    torch.testing.assert_close(kernel(x, 2.0), x * 2)
    torch.testing.assert_close(kernel(x, 3.0), x * 3)
    torch.testing.assert_close(kernel(x, 2.0), x * 2)
    assert kernel.lowered == 1  # a float is a runtime value (tilefn.trace.scalars)
    torch.testing.assert_close(kernel(x, 2), x * 2)
    torch.testing.assert_close(kernel(x, 3), x * 3)
    assert kernel.lowered == 3  # an int compiles per value
