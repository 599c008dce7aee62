"""`tfn.interpret` against eager PyTorch for the torch ops of issue 12: fmax/fmin, erfinv, lerp, nan_to_num,
masked_fill, var/std(_mean), norm/normalize, flip, stack/cat and tl.split/join (ragged edge tiles included)."""
import math

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from interpret_cases import FAST, FLOATS, blocks, check, data, float_dtypes, interpret, seeds, sizes, wide_blocks

from tilefn import lang as tl

F32, BF16, I32 = torch.float32, torch.bfloat16, torch.int32


def with_specials(x, seed):
    """`x` with NaN, +inf and -inf at a few drawn places (floats only)."""
    if not x.dtype.is_floating_point:
        return x
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(x.shape, generator=g)
    x = x.clone()
    x[u < 0.15] = math.nan
    x[(u >= 0.15) & (u < 0.2)] = math.inf
    x[(u >= 0.2) & (u < 0.25)] = -math.inf
    return x


def grid2(fn, out_dtype=None):
    """out[t] = fn(x[t], y[t]) over a 2-d grid of tiles."""
    def kernel(x, y):
        out = torch.empty(x.shape, dtype=out_dtype or x.dtype, device=x.device)
        for tm, tn in tl.tile(x.shape):
            out[tm, tn] = fn(x[tm, tn], y[tm, tn])
        return out

    return kernel


def rows(fn, width):
    """out[tm, :width] = fn(x[tm, :]) (whole rows of x, a tile of rows at a time)."""
    def kernel(x):
        out = torch.empty([x.shape[0], width], dtype=x.dtype, device=x.device)
        for tm in tl.tile(x.shape[0]):
            out[tm, :] = fn(x[tm, :])
        return out

    return kernel


NAN_RULES = {"fmax": torch.fmax, "fmin": torch.fmin, "maximum": torch.maximum, "minimum": torch.minimum,
             "fmax_method": lambda a, b: a.fmax(b), "fmin_scalar_side": lambda a, b: torch.fmin(b, a)}


@FAST
@given(name=st.sampled_from(sorted(NAN_RULES)), dtype=st.sampled_from(FLOATS + [I32]), m=sizes, n=sizes,
       bm=wide_blocks, bn=wide_blocks, seed=seeds)
def test_fmax_fmin_ignore_a_single_nan_and_maximum_propagates_it(name, dtype, m, n, bm, bn, seed):
    fn = NAN_RULES[name]
    x, y = with_specials(data([m, n], dtype, seed), seed + 1), with_specials(data([m, n], dtype, seed + 2), seed + 3)
    check(interpret(grid2(fn), x, y, block_sizes=[bm, bn]), fn(x, y))


def test_fmax_nan_rule_on_fixed_values():
    x = torch.tensor([[math.nan, 1.0, math.nan, -math.inf, 2.0]])
    y = torch.tensor([[3.0, math.nan, math.nan, math.nan, -1.0]])
    got = interpret(grid2(torch.fmax), x, y, block_sizes=[1, 4])
    torch.testing.assert_close(got, torch.tensor([[3.0, 1.0, math.nan, -math.inf, 2.0]]), equal_nan=True)
    got = interpret(grid2(torch.maximum), x, y, block_sizes=[1, 4])
    torch.testing.assert_close(got, torch.tensor([[math.nan, math.nan, math.nan, math.nan, 2.0]]), equal_nan=True)


@FAST
@given(dtype=st.sampled_from(FLOATS + [torch.float64, I32]), m=sizes, n=sizes, bm=wide_blocks, bn=wide_blocks,
       seed=seeds)
def test_erfinv(dtype, m, n, bm, bn, seed):
    x = data([m, n], dtype, seed, low=-1.2, high=1.2) if dtype.is_floating_point else data([m, n], dtype, seed, -1, 1)
    expected = torch.erfinv(x)
    got = interpret(grid2(lambda a, b: torch.special.erfinv(a), expected.dtype), x, x, block_sizes=[bm, bn])
    check(got, expected)


WEIGHTS = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, -0.5, 1.5, 2])


@FAST
@given(dtype=float_dtypes, weight=WEIGHTS, m=sizes, n=sizes, bm=wide_blocks, bn=wide_blocks, seed=seeds)
def test_lerp_with_a_scalar_weight(dtype, weight, m, n, bm, bn, seed):
    x, y = data([m, n], dtype, seed), data([m, n], dtype, seed + 1)
    got = interpret(grid2(lambda a, b: torch.lerp(a, b, weight)), x, y, block_sizes=[bm, bn])
    check(got, torch.lerp(x, y, weight))


@FAST
@given(dtype=float_dtypes, m=sizes, n=sizes, block=blocks, seed=seeds)
def test_lerp_with_a_tensor_weight_broadcast_from_a_row(dtype, m, n, block, seed):
    def kernel(x, y, w):
        out = torch.empty_like(x)
        for tm in tl.tile(x.shape[0]):
            out[tm, :] = x[tm, :].lerp(y[tm, :], w[None, :])
        return out

    x, y, w = data([m, n], dtype, seed), data([m, n], dtype, seed + 1), data([n], dtype, seed + 2, -1.0, 2.0)
    check(interpret(kernel, x, y, w, block_sizes=[block]), torch.lerp(x, y, w[None, :]))


NAN_TO_NUM = {"default": lambda a: torch.nan_to_num(a), "custom": lambda a: a.nan_to_num(1.5, posinf=7.0, neginf=-9.0),
              "posinf_only": lambda a: torch.nan_to_num(a, posinf=100.0)}


@FAST
@given(name=st.sampled_from(sorted(NAN_TO_NUM)), dtype=st.sampled_from(FLOATS + [I32, torch.bool]), m=sizes,
       n=sizes, bm=wide_blocks, bn=wide_blocks, seed=seeds)
def test_nan_to_num(name, dtype, m, n, bm, bn, seed):
    fn = NAN_TO_NUM[name]
    x = with_specials(data([m, n], dtype, seed), seed)
    got = interpret(grid2(lambda a, b: fn(a)), x, x, block_sizes=[bm, bn])
    assert torch.equal(got, fn(x))


MASKED_FILL = {"number": lambda a, b: a.masked_fill(b > 0, 2.7),
               "negative": lambda a, b: torch.masked_fill(a, b < a, -1),
               "zero_d_value": lambda a, b: a.masked_fill(b > 0, a.sum() * 0 + 3),
               "minus_inf": lambda a, b: a.masked_fill(b > 0.5, -math.inf) if a.dtype.is_floating_point else a}


@FAST
@given(name=st.sampled_from(sorted(MASKED_FILL)), dtype=st.sampled_from(FLOATS + [I32, torch.int8]), m=sizes,
       n=sizes, bm=wide_blocks, bn=wide_blocks, seed=seeds)
def test_masked_fill(name, dtype, m, n, bm, bn, seed):
    fn = MASKED_FILL[name]
    x, y = data([m, n], dtype, seed), data([m, n], dtype, seed + 1)
    check(interpret(grid2(fn), x, y, block_sizes=[bm, bn]), fn(x, y))


def test_masked_fill_keeps_large_integers_exact():
    x = torch.tensor([[2**31 - 1, -(2**31), 123456789, 7]], dtype=I32)
    y = torch.tensor([[0, 1, 0, 1]], dtype=I32)
    got = interpret(grid2(lambda a, b: a.masked_fill(b > 0, 5)), x, y, block_sizes=[1, 4])
    assert torch.equal(got, x.masked_fill(y > 0, 5))


VARIANCES = {
    "var": lambda v: v.var(1, keepdim=True), "var_unbiased_false": lambda v: torch.var(v, 1, False, True),
    "var_correction0": lambda v: v.var(dim=-1, correction=0, keepdim=True),
    "var_correction2": lambda v: torch.var(v, -1, correction=2, keepdim=True),
    "std": lambda v: v.std(1, keepdim=True), "std_correction0": lambda v: torch.std(v, 1, correction=0, keepdim=True),
    "var_mean": lambda v: sum(torch.var_mean(v, 1, keepdim=True)),
    "var_mean_squeezed": lambda v: torch.stack(torch.var_mean(v, dim=1, correction=0), dim=1),
    "std_mean": lambda v: torch.cat(torch.std_mean(v, -1, keepdim=True), dim=1),
}


@FAST
@given(name=st.sampled_from(sorted(VARIANCES)), dtype=float_dtypes, m=sizes, n=st.integers(1, 24), block=blocks,
       seed=seeds)
def test_variances_over_a_row(name, dtype, m, n, block, seed):
    fn = VARIANCES[name]
    x = data([m, n], dtype, seed)
    expected = fn(x)
    check(interpret(rows(fn, expected.shape[1]), x, block_sizes=[block]), expected, scale=4)


@FAST
@given(dtype=float_dtypes, m=sizes, n=sizes, bm=wide_blocks, bn=wide_blocks, seed=seeds)
def test_var_mean_over_a_ragged_tile_counts_its_valid_elements(dtype, m, n, bm, bn, seed):
    def kernel(x):
        out = torch.empty([2, x.shape[0], (x.shape[1] + bn - 1) // bn], dtype=x.dtype, device=x.device)
        for tm, tn in tl.tile(x.shape):
            v, mu = torch.var_mean(x[tm, tn], dim=1, correction=0)
            out[0, tm, tn.id] = v
            out[1, tm, tn.id] = mu
        return out

    x = data([m, n], dtype, seed)
    chunks = torch.split(x, bn, dim=1)
    expected = torch.stack([torch.stack([torch.var_mean(c, 1, correction=0)[i] for c in chunks], 1) for i in (0, 1)])
    check(interpret(kernel, x, block_sizes=[bm, bn]), expected, scale=4)


NORMS = {
    "normalize": lambda v: F.normalize(v, dim=-1), "normalize_p1": lambda v: F.normalize(v, p=1, dim=1),
    "normalize_inf_eps": lambda v: F.normalize(v * 1e-3, p=math.inf, dim=1, eps=0.5),
    "normalize_p3": lambda v: F.normalize(v, 3.0, -1), "norm": lambda v: v.norm(dim=1, keepdim=True) + v,
    "norm_p0": lambda v: torch.norm(v, 0, 1, True) + v, "vector_norm": lambda v: torch.linalg.vector_norm(v) + v,
}


@FAST
@given(name=st.sampled_from(sorted(NORMS)), dtype=float_dtypes, m=sizes, n=sizes, block=blocks, seed=seeds)
def test_norms_and_normalize(name, dtype, m, n, block, seed):
    fn = NORMS[name]
    x = data([m, n], dtype, seed)
    if name == "vector_norm":  # the norm of each tile of rows, not of the whole tensor
        expected = torch.cat([fn(chunk) for chunk in torch.split(x, block)])
    else:
        expected = fn(x)
    check(interpret(rows(fn, n), x, block_sizes=[block]), expected, scale=4)


def test_normalize_of_a_zero_row_divides_by_eps():
    x = torch.zeros(2, 5)
    x[1] = torch.arange(5.0)
    got = interpret(rows(lambda v: F.normalize(v, dim=1), 5), x, block_sizes=[2])
    check(got, F.normalize(x, dim=1))
    assert torch.equal(got[0], torch.zeros(5))


FLIPS = {"row": lambda v: v.flip(-1), "rows_and_cols": lambda v: torch.flip(v, (0, 1)),
         "tile_dim": lambda v: torch.flip(v, [0]) * 2}


@FAST
@given(name=st.sampled_from(sorted(FLIPS)), dtype=st.sampled_from(FLOATS + [I32]), m=sizes, n=sizes, block=blocks,
       seed=seeds)
def test_flip_reverses_the_valid_elements_of_a_ragged_tile(name, dtype, m, n, block, seed):
    fn = FLIPS[name]
    x = data([m, n], dtype, seed)
    expected = torch.cat([fn(chunk) for chunk in torch.split(x, block)])  # each tile of rows flips on its own
    check(interpret(rows(fn, n), x, block_sizes=[block]), expected)


STACKS = {  # name -> (in the kernel, in eager torch)
    "stack_last": 2 * (lambda v: torch.stack([v, v * 2], dim=-1).reshape(v.shape[0], -1),),
    "stack_middle3": 2 * (lambda v: torch.stack((v, -v, v + 1), 1).reshape(v.shape[0], -1),),
    "stack_first": 2 * (lambda v: torch.stack([v, v - 1], dim=0).permute(1, 0, 2).reshape(v.shape[0], -1),),
    "cat_last": 2 * (lambda v: torch.cat([v, v * 3], dim=-1),),
    "cat4": 2 * (lambda v: torch.cat([v, -v, v, v + 2], 1),),
    "concat_mixed_dtypes": 2 * (lambda v: torch.concat([v, (v > 0).to(torch.int8)], dim=1),),
    "join": (lambda v: tl.join(v, v * 2).reshape(v.shape[0], -1),
             lambda v: torch.stack([v, v * 2], -1).reshape(v.shape[0], -1)),
    "join_broadcast": (lambda v: tl.join(v, v.amax(1, keepdim=True)).reshape(v.shape[0], -1),
                       lambda v: torch.stack(torch.broadcast_tensors(v, v.amax(1, keepdim=True)), -1).reshape(v.shape[0], -1)),
    "split": (lambda v: torch.cat([2 * half for half in tl.split(v.reshape(v.shape[0], v.shape[1] // 2, 2))], 1),
              lambda v: torch.cat([2 * half for half in v.reshape(v.shape[0], -1, 2).unbind(-1)], 1)),
}


@FAST
@given(name=st.sampled_from(sorted(STACKS)), dtype=st.sampled_from(FLOATS + [I32]), m=sizes,
       half=st.integers(1, 12), block=blocks, seed=seeds)
def test_stack_cat_split_join(name, dtype, m, half, block, seed):
    in_kernel, eager = STACKS[name]
    x = data([m, 2 * half], dtype, seed)
    expected = eager(x)
    check(interpret(rows(in_kernel, expected.shape[1]), x, block_sizes=[block]).to(expected.dtype), expected)


def test_stack_of_tiles_along_a_new_leading_dim():
    def kernel(x, y):
        out = torch.empty([2, *x.shape], dtype=x.dtype, device=x.device)
        for tm, tn in tl.tile(x.shape):
            out[:, tm, tn] = torch.stack([x[tm, tn], y[tm, tn]])
        return out

    x, y = data([5, 7], F32, 0), data([5, 7], F32, 1)
    assert torch.equal(interpret(kernel, x, y, block_sizes=[2, 4]), torch.stack([x, y]))


def test_split_of_a_stack_gives_back_its_parts():
    def kernel(x, y):
        lo, hi = torch.empty_like(x), torch.empty_like(x)
        for tm, tn in tl.tile(x.shape):
            lo[tm, tn], hi[tm, tn] = tl.split(tl.join(y[tm, tn], x[tm, tn]))
        return lo, hi

    x, y = data([6, 3], BF16, 2), data([6, 3], BF16, 3)
    lo, hi = interpret(kernel, x, y, block_sizes=[4, 2])
    assert torch.equal(lo, y) and torch.equal(hi, x)
