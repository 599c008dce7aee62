"""The torch ops of issue 12, compiled (Triton's CPU interpreter), interpreted and eager agree under drawn
Configs and shapes (ragged edges, NaN and inf inputs), and compile for sm_90. The machinery (Case,
check, draw_config) is test_jit_vs_interpret's."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_jit_vs_interpret import (SETTINGS, Case, check, check_compiles_for_hopper, laid_out, one, pow2_cols, randn,
                                   size, two)

import tilefn as tfn
from tilefn import lang as tl

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning",
                                        "ignore::RuntimeWarning", "ignore::UserWarning")


# --- kernels (k_*) and their eager references (r_*) ------------------------------------------
def k_nan_rules(x, y):
    outs = [torch.empty_like(x) for _ in range(4)]
    for tm, tn in tl.tile(x.shape):
        a, b = x[tm, tn], y[tm, tn]
        outs[0][tm, tn] = torch.fmax(a, b)
        outs[1][tm, tn] = torch.fmin(a, b)
        outs[2][tm, tn] = torch.maximum(a, b)
        outs[3][tm, tn] = torch.minimum(a, b)
    return tuple(outs)


def r_nan_rules(x, y):
    return torch.fmax(x, y), torch.fmin(x, y), torch.maximum(x, y), torch.minimum(x, y)


def k_erfinv(x):
    out = torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        out[tm, tn] = torch.erfinv(x[tm, tn])
    return out


def r_erfinv(x):
    return torch.erfinv(x)


def k_lerp(x, y, w):
    outs = [torch.empty_like(x) for _ in range(3)]
    for tm, tn in tl.tile(x.shape):
        a, b = x[tm, tn], y[tm, tn]
        outs[0][tm, tn] = torch.lerp(a, b, 0.3)
        outs[1][tm, tn] = a.lerp(b, 0.75)
        outs[2][tm, tn] = torch.lerp(a, b, w[tm, tn])
    return tuple(outs)


def r_lerp(x, y, w):
    return torch.lerp(x, y, 0.3), torch.lerp(x, y, 0.75), torch.lerp(x, y, w)


def k_nan_to_num(x):
    plain, custom = torch.empty_like(x), torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        plain[tm, tn] = torch.nan_to_num(x[tm, tn])
        custom[tm, tn] = x[tm, tn].nan_to_num(nan=-1.0, posinf=4.0, neginf=-4.0)
    return plain, custom


def r_nan_to_num(x):
    return torch.nan_to_num(x), x.nan_to_num(nan=-1.0, posinf=4.0, neginf=-4.0)


def k_masked_fill(x, y):
    outs = [torch.empty_like(x) for _ in range(3)]
    for tm, tn in tl.tile(x.shape):
        a, b = x[tm, tn], y[tm, tn]
        outs[0][tm, tn] = a.masked_fill(b > 0, 2.5)
        outs[1][tm, tn] = torch.masked_fill(a, a < b, -math.inf)
        outs[2][tm, tn] = a.masked_fill(b < -0.5, b.amax() * 0 + 1)
    return tuple(outs)


def r_masked_fill(x, y):
    return x.masked_fill(y > 0, 2.5), x.masked_fill(x < y, -math.inf), x.masked_fill(y < -0.5, 1.0)


def k_variance(x):
    m, n = x.shape
    var, std, var0, mean = (torch.empty([m], dtype=x.dtype, device=x.device) for _ in range(4))
    for tm in tl.tile(m):
        row = x[tm, :]
        var[tm] = row.var(dim=1)
        std[tm] = torch.std(row, 1)
        var0[tm], mean[tm] = torch.var_mean(row, dim=-1, correction=0)
    return var, std, var0, mean


def r_variance(x):
    a = x.float()
    var0, mean = torch.var_mean(a, -1, correction=0)
    return tuple(v.to(x.dtype) for v in (a.var(1), a.std(1), var0, mean))


def k_normalize(x):
    unit, l1 = torch.empty_like(x), torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        row = x[tm, :]
        unit[tm, :] = F.normalize(row, dim=-1)
        l1[tm, :] = F.normalize(row, p=1, dim=1) + row.norm(dim=1, keepdim=True)
    return unit, l1


def r_normalize(x):
    a = x.float()
    return F.normalize(a, dim=-1).to(x.dtype), (F.normalize(a, p=1, dim=1) + a.norm(dim=1, keepdim=True)).to(x.dtype)


def k_flip(x):
    """A whole row (n lanes: tl.flip when n is a power of two, else a gather) and a ragged tile of rows."""
    rows, tiles = torch.empty_like(x), torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        rows[tm, :] = x[tm, :].flip(-1)
        tiles[tm, :] = torch.flip(x[tm, :], [0]) + 1
    return rows, tiles


def r_flip(x, config):
    block = config.block_sizes[0]
    return x.flip(-1), torch.cat([chunk.flip(0) + 1 for chunk in torch.split(x, block)])


def k_stack(x, y):
    m, n = x.shape
    pair = torch.empty([m, n, 2], dtype=x.dtype, device=x.device)
    triple = torch.empty([3, m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        a, b = x[tm, tn], y[tm, tn]
        pair[tm, tn, :] = torch.stack([a, b], dim=-1)
        triple[:, tm, tn] = torch.stack((a, b * 2, a - b))
    return pair, triple


def r_stack(x, y):
    return torch.stack([x, y], -1), torch.stack([x, y * 2, x - y])


def k_cat_split_join(x):
    """cat along the last dim, and a rope-like rotation of (even, odd) pairs through tl.split / tl.join."""
    m, n = x.shape  # n is a power of two
    both = torch.empty([m, 2 * n], dtype=x.dtype, device=x.device)
    rotated = torch.empty_like(x)
    for tm in tl.tile(m):
        row = x[tm, :]
        both[tm, :] = torch.cat([row, -row], dim=-1)
        if n > 1:
            even, odd = tl.split(row.reshape(tm, n // 2, 2))
            rotated[tm, :] = tl.join(-odd, even).reshape(tm, n)
        else:
            rotated[tm, :] = row
    return both, rotated


def r_cat_split_join(x):
    m, n = x.shape
    if n == 1:
        return torch.cat([x, -x], -1), x
    pairs = x.reshape(m, n // 2, 2)
    return torch.cat([x, -x], -1), torch.stack([-pairs[..., 1], pairs[..., 0]], -1).reshape(m, n)


# --- inputs ----------------------------------------------------------------------------------
def _specials(x):
    u = torch.rand(x.shape)
    x = x.clone()
    x[u < 0.15] = math.nan
    x[(u >= 0.15) & (u < 0.2)] = math.inf
    x[(u >= 0.2) & (u < 0.25)] = -math.inf
    return x


def two_with_nan(draw, dtype):
    x, y = two(draw, dtype)
    return _specials(x.float()).to(dtype), _specials(y.float()).to(dtype)


def one_with_nan(draw, dtype):
    return (laid_out(draw, _specials(randn((size(draw), size(draw)), torch.float32)).to(dtype)),)


def in_erfinv_domain(draw, dtype):
    """Values in (-1.1, 1.1), with exact +-1 and 0 at a few places."""
    m, n = size(draw), size(draw)
    x = torch.rand(m, n, dtype=torch.float64) * 2.2 - 1.1
    u = torch.rand(m, n)
    x[u < 0.05], x[(u >= 0.05) & (u < 0.1)], x[(u >= 0.1) & (u < 0.12)] = 1.0, -1.0, 0.0
    return (x.to(dtype),)


def three(draw, dtype):
    x, y = two(draw, dtype)
    return x, y, (torch.rand(x.shape) * 3 - 1).to(dtype)


CASES = [
    Case(k_nan_rules, two_with_nan, r_nan_rules, dtypes=(torch.float32, torch.bfloat16, torch.float16)),
    Case(k_nan_rules, two, r_nan_rules, dtypes=(torch.int32,)),
    Case(k_erfinv, in_erfinv_domain, r_erfinv, dtypes=(torch.float32, torch.bfloat16, torch.float16, torch.float64),
         tol={torch.float32: (1e-5, 1e-5), torch.float64: (1e-9, 1e-9)}),
    Case(k_lerp, three, r_lerp),
    Case(k_nan_to_num, one_with_nan, r_nan_to_num),
    Case(k_masked_fill, two, r_masked_fill),
    Case(k_variance, one, r_variance, tol={torch.float32: (1e-4, 1e-4)}),
    Case(k_normalize, one, r_normalize, tol={torch.float32: (1e-4, 1e-4)}),
    Case(k_flip, one, r_flip, ref_needs_config=True),
    Case(k_stack, two, r_stack),
    Case(k_cat_split_join, pow2_cols, r_cat_split_join),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.name}_{c.dtypes[0]}".replace("torch.", ""))
@SETTINGS
@given(data=st.data())
def test_compiled_equals_interpret_equals_eager(case, data):
    check(case, data)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.name}_{c.dtypes[0]}".replace("torch.", ""))
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_compiles_for_hopper_without_a_gpu(case, data):
    check_compiles_for_hopper(case, data)


def test_fmax_on_the_compiled_path_returns_the_number_beside_a_nan():
    x = torch.tensor([[math.nan, 1.0, math.nan, -math.inf, 2.0]])
    y = torch.tensor([[3.0, math.nan, math.nan, math.nan, -1.0]])
    hi, lo, mx, mn = tfn.jit(k_nan_rules, config=tfn.Config(block_sizes=[1, 8]))(x, y)
    torch.testing.assert_close(hi, torch.tensor([[3.0, 1.0, math.nan, -math.inf, 2.0]]), equal_nan=True)
    torch.testing.assert_close(lo, torch.tensor([[3.0, 1.0, math.nan, -math.inf, -1.0]]), equal_nan=True)
    assert mx[0, :4].isnan().all() and mn[0, :4].isnan().all()
