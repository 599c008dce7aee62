"""`acc += a @ b` in an inner loop: the eager meaning (product rounded to its dtype, then added) and a
warning at the user's line naming the accumulating forms; none for addmm, top-level loops or plain adds."""
from __future__ import annotations

import warnings

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import MatmulAccumulationWarning


def plus_equals(x, y):
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=torch.float32)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc += x[tm, tk] @ y[tk, tn]
        out[tm, tn] = acc
    return out


def addmm(x, y):
    m, k = x.shape
    _, n = y.shape
    out = torch.empty([m, n], dtype=torch.float32)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = torch.addmm(acc, x[tm, tk], y[tk, tn])
            acc += 1.0  # a plain add: no warning
        out[tm, tn] = acc - k // 16
    return out


def _eager_plus_equals(x, y, block_k):
    acc = torch.zeros(x.shape[0], y.shape[1])
    for k0 in range(0, x.shape[1], block_k):
        acc += (x[:, k0:k0 + block_k] @ y[k0:k0 + block_k, :]).float()  # the product in x's dtype first
    return acc


def test_a_bf16_product_into_a_float_accumulator_warns_at_the_users_line_and_keeps_eager_rounding():
    x, y = torch.randn(32, 64, dtype=torch.bfloat16), torch.randn(64, 16, dtype=torch.bfloat16)
    config = tfn.Config(block_sizes=[16, 16, 16])
    with pytest.warns(MatmulAccumulationWarning, match=r"torch.addmm\(acc, a, b\)") as caught:
        got = tfn.jit(plus_equals, config=config)(x, y)
    (warning,) = [w for w in caught if issubclass(w.category, MatmulAccumulationWarning)]
    assert warning.filename == __file__ and warning.lineno == plus_equals.__code__.co_firstlineno + 7
    assert "rounds each partial product to torch.bfloat16" in str(warning.message)
    expected = _eager_plus_equals(x, y, 16)
    torch.testing.assert_close(got, expected, atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(tfn.interpret(plus_equals, config=config)(x, y), got, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("kernel", [plus_equals, addmm])
def test_equal_dtypes_addmm_and_plain_adds_do_not_warn(kernel):
    x, y = torch.randn(32, 64), torch.randn(64, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MatmulAccumulationWarning)
        got = tfn.jit(kernel, config=tfn.Config(block_sizes=[16, 16, 16]))(x, y)
    torch.testing.assert_close(got, x @ y, atol=1e-4, rtol=1e-4)
