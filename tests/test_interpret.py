"""`tfn.interpret` against eager PyTorch: pointwise ops, reductions, decompositions and views, at random
shapes (ragged edges), dtypes and block sizes (matrix products, memory, loops: test_interpret_kernels.py)."""
import math

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from tilefn import lang as tl
from interpret_cases import (
    F32, F16, I32, I64, FAST, sizes, blocks, wide_blocks, seeds, float_dtypes, dtypes, check, data, interpret)


# --- pointwise ----------------------------------------------------------------------------------
def pointwise_kernel(fn):
    """out[t] = fn(x[t], y[t]) over a 2-d grid; the traced result must have eager PyTorch's dtype."""

    def kernel(x, y, out_dtype: torch.dtype):
        out = torch.empty(x.shape, dtype=out_dtype, device=x.device)
        for tm, tn in tl.tile(x.shape):
            result = fn(x[tm, tn], y[tm, tn])
            assert result.dtype == out_dtype, (result.dtype, out_dtype)
            out[tm, tn] = result
        return out

    return kernel


BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "floordiv": lambda a, b: a // b, "remainder": lambda a, b: a % b,
    "torch.sub_alpha": lambda a, b: torch.sub(a, b, alpha=2),
    "div_floor": lambda a, b: torch.div(a, b, rounding_mode="floor"),
    "div_trunc": lambda a, b: torch.div(a, b, rounding_mode="trunc"),
    "pow": lambda a, b: a ** b, "maximum": torch.maximum, "minimum": torch.minimum,
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "where": lambda a, b: torch.where(a > b, a, b * 2), "where_scalar": lambda a, b: torch.where(a > 0, a, 0),
    "clamp": lambda a, b: torch.clamp(a, -1, 2), "clamp_tensor": lambda a, b: torch.clamp(a, min=b),
    "clamp_max": lambda a, b: a.clamp(max=1), "logical_and": lambda a, b: (a > 0) & (b > 0),
    "logical_or": lambda a, b: torch.logical_or(a > 0, b < 0), "logical_xor": lambda a, b: (a > 0) ^ (b > 0),
    "logical_not": lambda a, b: ~(a > b), "mixed": lambda a, b: 2 - a * 0.5 + (b > 1),
    "scalar_pow": lambda a, b: a ** 2, "rpow": lambda a, b: 2 ** a, "rdiv": lambda a, b: 1 / (b * b + 1),
    "cast_add": lambda a, b: a.to(F32) + b.to(F16), "int_cast": lambda a, b: a.to(I32) * b.to(I32),
}
INT_ONLY = {"bitwise_and": lambda a, b: a & b, "bitwise_or": lambda a, b: a | b,
            "bitwise_xor": lambda a, b: a ^ b, "lshift": lambda a, b: a << (b & 3),
            "rshift": lambda a, b: a >> (b & 3), "invert": lambda a, b: ~a}
FLOAT_ONLY = {"atan2": torch.atan2, "fmod": torch.fmod}


def _operands(name, dtype, m, n, seed):
    x, y = data([m, n], dtype, seed), data([m, n], dtype, seed + 1)
    if not dtype.is_floating_point:
        y = torch.where(y == 0, torch.ones_like(y), y)  # integer division by zero raises
        if name == "pow":
            y = y.abs()
    return x, y


@FAST
@given(name=st.sampled_from(sorted(BINARY)), dtype=dtypes, m=sizes, n=sizes, bm=wide_blocks, bn=wide_blocks,
       seed=seeds)
def test_binary_pointwise(name, dtype, m, n, bm, bn, seed):
    fn = BINARY[name]
    x, y = _operands(name, dtype, m, n, seed)
    expected = fn(x, y)
    check(interpret(pointwise_kernel(fn), x, y, expected.dtype, block_sizes=[bm, bn]), expected)


@FAST
@given(name=st.sampled_from(sorted(INT_ONLY)), dtype=st.sampled_from([I32, I64, torch.int8]), m=sizes,
       n=sizes, bm=wide_blocks, bn=wide_blocks, seed=seeds)
def test_integer_pointwise(name, dtype, m, n, bm, bn, seed):
    fn = INT_ONLY[name]
    x, y = _operands(name, dtype, m, n, seed)
    expected = fn(x, y)
    check(interpret(pointwise_kernel(fn), x, y, expected.dtype, block_sizes=[bm, bn]), expected)


@FAST
@given(name=st.sampled_from(sorted(FLOAT_ONLY)), dtype=float_dtypes, m=sizes, n=sizes, bm=wide_blocks,
       bn=wide_blocks, seed=seeds)
def test_float_pointwise(name, dtype, m, n, bm, bn, seed):
    fn = FLOAT_ONLY[name]
    x, y = _operands(name, dtype, m, n, seed)
    expected = fn(x, y)
    check(interpret(pointwise_kernel(fn), x, y, expected.dtype, block_sizes=[bm, bn]), expected)


UNARY = {
    "neg": lambda a: -a, "abs": torch.abs, "exp": torch.exp, "exp2": torch.exp2, "expm1": torch.expm1,
    "log": lambda a: torch.log(a.abs() + 0.5), "log1p": lambda a: torch.log1p(a.abs()),
    "log2": lambda a: (a.abs() + 1).log2(), "sqrt": lambda a: torch.sqrt(a.abs()),
    "rsqrt": lambda a: (a.abs() + 0.5).rsqrt(), "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh,
    "sigmoid": torch.sigmoid, "erf": torch.erf, "floor": torch.floor, "ceil": torch.ceil,
    "round": torch.round, "trunc": torch.trunc, "sign": torch.sign, "reciprocal": lambda a: torch.reciprocal(a + 10),
    "relu": torch.relu, "isnan": torch.isnan, "isfinite": lambda a: torch.isfinite(a / 0),
    "square": lambda a: a * a, "float": lambda a: a.float(), "to_f16": lambda a: a.to(F16),
    "to_int": lambda a: a.to(I32), "to_bool": lambda a: a.bool(), "half": lambda a: a.half(),
}


@FAST
@given(name=st.sampled_from(sorted(UNARY)), dtype=dtypes, m=sizes, n=sizes, bm=wide_blocks, bn=wide_blocks,
       seed=seeds)
def test_unary_pointwise(name, dtype, m, n, bm, bn, seed):
    fn = UNARY[name]
    x = data([m, n], dtype, seed)
    expected = fn(x)
    check(interpret(pointwise_kernel(lambda a, b: fn(a)), x, x, expected.dtype, block_sizes=[bm, bn]), expected)


@FAST
@given(dtype=dtypes, m=sizes, n=sizes, bm=wide_blocks, bn=wide_blocks, seed=seeds)
def test_broadcasting_between_tiles(dtype, m, n, bm, bn, seed):
    def outer(a, b, c):
        out = torch.empty([a.size(0), b.size(0)], dtype=torch.promote_types(a.dtype, c.dtype), device=a.device)
        for tm, tn in tl.tile(out.shape):
            out[tm, tn] = a[tm][:, None] * b[tn][None, :] + a[tm, None] - c[None, tn] + 1
        return out

    a, b, c = data([m], dtype, seed), data([n], dtype, seed + 1), data([n], F32, seed + 2)
    expected = a[:, None] * b[None, :] + a[:, None] - c[None, :] + 1
    check(interpret(outer, a, b, c, block_sizes=[bm, bn]), expected)


# --- reductions ---------------------------------------------------------------------------------
REDUCTIONS = {
    "sum": lambda v, d, k: v.sum(d, keepdim=k), "mean": lambda v, d, k: v.mean(dim=d, keepdim=k),
    "amax": lambda v, d, k: torch.amax(v, d, keepdim=k), "amin": lambda v, d, k: v.amin(d, k),
    "max_values": lambda v, d, k: v.max(dim=d, keepdim=k).values,
    "max_indices": lambda v, d, k: v.max(d, keepdim=k).indices,
    "min_values": lambda v, d, k: torch.min(v, d, k)[0], "min_indices": lambda v, d, k: torch.min(v, d, k)[1],
    "argmax": lambda v, d, k: v.argmax(d, keepdim=k), "argmin": lambda v, d, k: torch.argmin(v, dim=d, keepdim=k),
    "prod": lambda v, d, k: v.prod(d, keepdim=k), "logsumexp": lambda v, d, k: torch.logsumexp(v, d, keepdim=k),
    "sum_f32": lambda v, d, k: v.sum(d, keepdim=k, dtype=F32), "var": lambda v, d, k: torch.var(v, d, keepdim=k),
    "std": lambda v, d, k: torch.std(v, dim=d, keepdim=k, correction=0),
    "any": lambda v, d, k: (v > 1).any(d, keepdim=k), "all": lambda v, d, k: (v > -2).all(d, keepdim=k),
    "norm2": lambda v, d, k: (v * v).sum(d, keepdim=k).sqrt(),
}
FLOAT_REDUCTIONS = {"mean", "logsumexp", "var", "std", "norm2"}


def reduction_kernels(fn, keepdim):
    """Tiles of rows, each reducing its full rows (dim 1); or tiles of columns reducing dim 0.

    The traced result must have eager PyTorch's dtype (a store would otherwise cast it silently).
    """

    def checked(result, out_dtype):
        assert result.dtype == out_dtype, (result.dtype, out_dtype)
        return result

    def rows(x, out_dtype: torch.dtype):
        m, n = x.shape
        out = torch.empty([m, 1] if keepdim else [m], dtype=out_dtype, device=x.device)
        for tm in tl.tile(m):
            out[tm] = checked(fn(x[tm, :], 1, keepdim), out_dtype)
        return out

    def cols(x, out_dtype: torch.dtype):
        m, n = x.shape
        out = torch.empty([1, n] if keepdim else [n], dtype=out_dtype, device=x.device)
        for tn in tl.tile(n):
            if keepdim:
                out[:, tn] = checked(fn(x[:, tn], 0, keepdim), out_dtype)
            else:
                out[tn] = checked(fn(x[:, tn], -2, keepdim), out_dtype)
        return out

    return {"rows": (rows, 1), "cols": (cols, 0)}


@FAST
@given(name=st.sampled_from(sorted(REDUCTIONS)), dtype=dtypes, m=sizes, n=sizes, block=blocks,
       keepdim=st.booleans(), tiled=st.sampled_from(["rows", "cols"]), seed=seeds)
def test_reductions(name, dtype, m, n, block, keepdim, tiled, seed):
    fn = REDUCTIONS[name]
    if name in FLOAT_REDUCTIONS and not dtype.is_floating_point:
        dtype = F32
    low, high = (0.5, 1.5) if name == "prod" else (-3.0, 3.0)
    x = data([m, n], dtype, seed, low, high)
    kernel, dim = reduction_kernels(fn, keepdim)[tiled]
    expected = fn(x, dim, keepdim)
    actual = interpret(kernel, x, expected.dtype, block_sizes=[block])
    check(actual, expected, scale=math.sqrt(max(m, n)), dtype=dtype)


@FAST
@given(name=st.sampled_from(["cumsum", "cumprod"]), dtype=dtypes, m=sizes, n=sizes, block=blocks, seed=seeds)
def test_scans_along_a_full_row(name, dtype, m, n, block, seed):
    def kernel(x):
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
        for tm in tl.tile(x.size(0)):
            out[tm, :] = getattr(x[tm, :], name)(1)
        return out

    x = data([m, n], dtype, seed, 0.5, 1.5)
    expected = getattr(x, name)(1).float()
    check(interpret(kernel, x, block_sizes=[block]), expected, scale=math.sqrt(n), dtype=dtype)


@FAST
@given(dtype=dtypes, n=st.integers(1, 40), block=blocks, seed=seeds)
def test_full_reduction_per_tile(dtype, n, block, seed):
    """`v.sum()` of each tile stored at `out[t.id]`: partial sums that depend on the block size."""

    def partial_sums(x):
        n = x.size(0)
        out = torch.zeros([n], dtype=torch.float32, device=x.device)
        for t in tl.tile(n):
            out[t.id] = x[t].sum()
        return out

    x = data([n], dtype, seed)
    expected = torch.zeros(n)
    for i, start in enumerate(range(0, n, block)):
        expected[i] = x[start:start + block].sum().float()
    check(interpret(partial_sums, x, block_sizes=[block]), expected, scale=math.sqrt(block) * 4)


@FAST
@given(dtype=dtypes, m=sizes, n=st.integers(1, 40), bm=blocks, bn=blocks, seed=seeds)
def test_reduction_over_tiles_with_a_carry(dtype, m, n, bm, bn, seed):
    """Sum, max and mean of each row through a loop over column tiles (mean counts ragged tiles)."""

    def row_stats(x):
        m, n = x.shape
        out = torch.empty([3, m], dtype=torch.float32, device=x.device)
        for tm in tl.tile(m):
            total = tl.zeros([tm], dtype=torch.float32)
            biggest = tl.full([tm], float("-inf"), dtype=torch.float32)
            mean_of_means = tl.zeros([tm], dtype=torch.float32)
            for tn in tl.tile(n):
                v = x[tm, tn].to(torch.float32)
                total += v.sum(dim=1)
                biggest = torch.maximum(biggest, v.amax(dim=1))
                mean_of_means = mean_of_means + v.mean(dim=1) * (tn.end - tn.begin)
            out[0, tm] = total
            out[1, tm] = biggest
            out[2, tm] = mean_of_means / n
        return out

    x = data([m, n], dtype, seed)
    xf = x.float()
    expected = torch.stack([xf.sum(1), xf.amax(1), xf.mean(1)])
    check(interpret(row_stats, x, block_sizes=[bm, bn]), expected, scale=math.sqrt(n))


# --- decompositions -----------------------------------------------------------------------------
DECOMPOSITIONS = {
    "softmax": lambda v, w, b: torch.softmax(v, dim=-1), "softmax_f": lambda v, w, b: F.softmax(v, 1),
    "softmax_f32": lambda v, w, b: torch.softmax(v, dim=1, dtype=F32),
    "log_softmax": lambda v, w, b: F.log_softmax(v, dim=-1), "log_softmax_m": lambda v, w, b: v.log_softmax(1),
    "layer_norm": lambda v, w, b: F.layer_norm(v, [v.shape[-1]]),
    "layer_norm_affine": lambda v, w, b: F.layer_norm(v, [v.shape[-1]], w, b, eps=1e-3),
    "rms_norm": lambda v, w, b: F.rms_norm(v, [v.shape[-1]], w, eps=1e-6),
    "rms_norm_plain": lambda v, w, b: F.rms_norm(v, [v.shape[-1]]),
    "gelu": lambda v, w, b: F.gelu(v), "gelu_tanh": lambda v, w, b: F.gelu(v, approximate="tanh"),
    "silu": lambda v, w, b: F.silu(v), "sigmoid": lambda v, w, b: torch.sigmoid(v),
    "tanh": lambda v, w, b: v.tanh(), "softplus": lambda v, w, b: F.softplus(v),
    "relu": lambda v, w, b: F.relu(v), "logsumexp": lambda v, w, b: torch.logsumexp(v, -1, keepdim=True),
}


@FAST
@given(name=st.sampled_from(sorted(DECOMPOSITIONS)), dtype=float_dtypes, m=sizes, n=sizes, block=blocks,
       seed=seeds)
def test_decompositions(name, dtype, m, n, block, seed):
    fn = DECOMPOSITIONS[name]

    def kernel(x, w, b):
        m, n = x.shape
        out = torch.empty([m, n], dtype=torch.float32, device=x.device)
        for tm in tl.tile(m):
            out[tm, :] = fn(x[tm, :], w[:], b[:])  # keepdim results broadcast on store
        return out

    x, w, b = data([m, n], dtype, seed), data([n], dtype, seed + 1), data([n], dtype, seed + 2)
    expected = fn(x, w, b)
    actual = interpret(kernel, x, w, b, block_sizes=[block])
    check(actual, torch.broadcast_to(expected, [m, n]).float(), dtype=dtype)


# --- views --------------------------------------------------------------------------------------
@FAST
@given(dtype=dtypes, m=sizes, k=st.integers(1, 8), bm=blocks, seed=seeds)
def test_views(dtype, m, k, bm, seed):
    n = 2 * k

    def kernel(x, x3):
        out = torch.empty([9, m, n], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            v = x[tm, :]
            out[0, tm, :] = v[:, None].squeeze(1)
            out[1, tm, :] = v.unsqueeze(0).squeeze(0).unsqueeze(-1).squeeze()
            out[2, tm, :] = v.reshape(tm, k, 2).reshape(tm, n)
            out[3, tm, :] = v.view(tm, 2, -1).permute(0, 2, 1).reshape(tm, -1)
            out[4, tm, :] = v.transpose(0, 1).t()
            out[5, tm, :] = x[tm, 0][:, None].expand(tm, n)
            out[6, tm, :] = x[tm, 0:1].broadcast_to([tm, n]) * 1
            out[7, tm, :] = x3[tm, :, :].reshape(tm, n)
            out[8, tm, :] = v[:, None, :].expand(-1, 3, -1).sum(1)
        return out

    x = data([m, n], dtype, seed)
    x3 = data([m, k, 2], dtype, seed + 1)
    expected = torch.stack([
        x, x, x, x.view(m, 2, k).permute(0, 2, 1).reshape(m, n), x, x[:, :1].expand(m, n), x[:, :1].expand(m, n),
        x3.reshape(m, n), x[:, None, :].expand(-1, 3, -1).sum(1).to(dtype)])
    check(interpret(kernel, x, x3, block_sizes=[bm]), expected)


@FAST
@given(dtype=dtypes, m=sizes, n=sizes, bm=wide_blocks, bn=wide_blocks, seed=seeds)
def test_transposed_tiles(dtype, m, n, bm, bn, seed):
    def transpose(x):
        m, n = x.shape
        out = torch.empty([n, m], dtype=x.dtype, device=x.device)
        for tm, tn in tl.tile([m, n]):
            out[tn, tm] = x[tm, tn].T
        return out

    x = data([m, n], dtype, seed)
    check(interpret(transpose, x, block_sizes=[bm, bn]), x.T)
