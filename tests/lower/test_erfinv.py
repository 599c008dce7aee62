"""torch.erfinv lowered (tilefn/lower/erfinv.py): accuracy over its whole domain and its edge values."""
from __future__ import annotations

import math

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning",
                                        "ignore::RuntimeWarning")


def erfinv(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = torch.erfinv(x[t])
    return out


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-6), (torch.float64, 1e-9)])
def test_erfinv_is_accurate_across_its_domain(dtype, rtol):
    edges = [1 - 2**-24, -(1 - 2**-24), 1 - 2**-20, 0.999, 1e-30, -1e-7, 0.0]
    x = torch.cat([torch.linspace(-1, 1, 4001, dtype=dtype)[1:-1], torch.tensor(edges, dtype=dtype)])
    got = tfn.jit(erfinv, config=tfn.Config(block_sizes=[512]))(x)
    want = torch.erfinv(x.double()).to(dtype)
    torch.testing.assert_close(got, want, rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_erfinv_edges_are_exact(dtype):
    x = torch.tensor([1.0, -1.0, 1.5, -2.0, math.nan, 0.0], dtype=dtype)
    got = tfn.jit(erfinv, config=tfn.Config(block_sizes=[8]))(x)
    torch.testing.assert_close(got, torch.erfinv(x), equal_nan=True, rtol=0, atol=0)
