"""`tfn.interpret` against eager PyTorch: random shapes (ragged edges), dtypes and block sizes."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tilefn as tfn
from tilefn import lang as tl

F32, F16, BF16, I32, I64 = torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64
FLOATS = [F32, F16, BF16]
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.integers(1, 24)  # rarely a multiple of the block size: edge tiles are ragged
blocks = st.sampled_from([1, 2, 4, 8, 16, 32])
wide_blocks = st.sampled_from([2, 4, 8, 16, 32])  # for 2-d grids: no 1x1 tiles, to stay fast
seeds = st.integers(0, 2**31 - 1)
float_dtypes = st.sampled_from(FLOATS)
dtypes = st.sampled_from(FLOATS + [I32])


def tolerance(dtype, scale=1.0):
    """rtol/atol for comparing a result of `dtype`; `scale` widens atol for long sums."""
    rtol, atol = {F32: (1e-5, 1e-5), F16: (2e-3, 2e-3), BF16: (2e-2, 2e-2)}.get(dtype, (0, 0))
    return dict(rtol=rtol, atol=atol * scale)


def check(actual, expected, scale=1.0, dtype=None):
    """Compare with tolerances for `dtype` (the computation's precision; default: the result's)."""
    tol = tolerance(dtype or expected.dtype, scale)
    torch.testing.assert_close(actual, expected, equal_nan=True, **tol)


def data(shape, dtype, seed, low=-3.0, high=3.0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    if dtype.is_floating_point:
        return (torch.rand(shape, generator=g) * (high - low) + low).to(dtype)
    return torch.randint(int(low), int(high) + 1, shape, generator=g).to(dtype)


def interpret(kernel, *args, block_sizes=()):
    return tfn.interpret(kernel, config=tfn.Config(block_sizes=list(block_sizes)))(*args)


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


# --- matrix products ----------------------------------------------------------------------------
MATMULS = {  # name -> (the update in the kernel, the same update in eager float32 on one k tile)
    "addmm": lambda acc, a, b: torch.addmm(acc, a, b),
    "matmul_op": lambda acc, a, b: acc + a @ b,
    "mm": lambda acc, a, b: acc + torch.mm(a, b).float(),
    "matmul": lambda acc, a, b: acc + torch.matmul(a, b),
    "dot": lambda acc, a, b: tl.dot(a, b, acc=acc),
    "dot_plain": lambda acc, a, b: acc + tl.dot(a, b),
    "addmm_scaled": lambda acc, a, b: torch.addmm(acc, a, b, beta=0.5, alpha=2.0),
}
ROUNDED_PRODUCT = {"matmul_op", "mm", "matmul"}  # `a @ b` of half tiles is rounded to half first


@FAST
@given(name=st.sampled_from(sorted(MATMULS)), dtype=float_dtypes, m=sizes, k=sizes, n=sizes,
       bm=wide_blocks, bn=wide_blocks, bk=blocks, seed=seeds)
def test_matmul(name, dtype, m, k, n, bm, bn, bk, seed):
    fn = MATMULS[name]

    def matmul(x, y):
        m, k = x.shape
        _, n = y.shape
        out = torch.empty([m, n], dtype=x.dtype, device=x.device)
        for tm, tn in tl.tile([m, n]):
            acc = tl.zeros([tm, tn], dtype=torch.float32)
            for tk in tl.tile(k):
                acc = fn(acc, x[tm, tk], y[tk, tn])
            out[tm, tn] = acc  # a float32 accumulator stored into a lower-precision output
        return out

    x, y = data([m, k], dtype, seed), data([k, n], dtype, seed + 1)
    xf, yf = x.float(), y.float()
    acc = torch.zeros(m, n)
    for start in range(0, k, bk):  # what the kernel computes: one update per k tile
        product = xf[:, start:start + bk] @ yf[start:start + bk]
        if name in ROUNDED_PRODUCT:
            product = product.to(dtype).float()
        acc = acc * 0.5 + product * 2 if name == "addmm_scaled" else acc + product
    check(interpret(matmul, x, y, block_sizes=[bm, bn, bk]), acc.to(dtype), scale=math.sqrt(k))


@FAST
@given(m=sizes, k=sizes, n=sizes, bm=wide_blocks, bn=wide_blocks, bk=blocks, seed=seeds)
def test_integer_dot(m, k, n, bm, bn, bk, seed):
    def matmul(x, y):
        m, k = x.shape
        _, n = y.shape
        out = torch.empty([m, n], dtype=torch.int32, device=x.device)
        for tm, tn in tl.tile([m, n]):
            acc = tl.zeros([tm, tn], dtype=torch.int32)
            for tk in tl.tile(k):
                acc = acc + x[tm, tk] @ y[tk, tn]
            out[tm, tn] = acc
        return out

    x, y = data([m, k], I32, seed), data([k, n], I32, seed + 1)
    check(interpret(matmul, x, y, block_sizes=[bm, bn, bk]), x @ y)


def tf32_by_frexp(x):
    """float32 -> TensorFloat-32 (11 significant bits, ties to even), by mantissa and exponent."""
    mantissa, exponent = torch.frexp(x.double())
    return torch.ldexp(torch.round(mantissa * 2**11) / 2**11, exponent.double()).float()


@FAST
@given(m=sizes, k=sizes, n=sizes, bm=wide_blocks, bn=wide_blocks, bk=blocks, seed=seeds)
def test_tf32_dot_rounds_its_inputs_and_ieee_does_not(m, k, n, bm, bn, bk, seed):
    def matmul(x, y):
        out = torch.empty([x.shape[0], y.shape[1]], device=x.device)
        for tm, tn in tl.tile([x.shape[0], y.shape[1]]):
            acc = tl.zeros([tm, tn], dtype=torch.float32)
            for tk in tl.tile(x.shape[1]):
                acc = tl.dot(x[tm, tk], y[tk, tn], acc)
            out[tm, tn] = acc
        return out

    x, y = data([m, k], F32, seed), data([k, n], F32, seed + 1)
    config = tfn.Config(block_sizes=[bm, bn, bk])
    tf32 = tfn.interpret(tfn.jit(matmul, dot_precision="tf32"), config=config)(x, y)
    ieee = tfn.interpret(tfn.jit(matmul), config=config)(x, y)
    exact = dict(rtol=1e-5, atol=1e-5, check_dtype=False)
    torch.testing.assert_close(tf32, tf32_by_frexp(x).double() @ tf32_by_frexp(y).double(), **exact)
    torch.testing.assert_close(ieee, x.double() @ y.double(), **exact)


@FAST
@given(name=st.sampled_from(["bmm", "baddbmm", "matmul"]), dtype=float_dtypes, b=st.integers(1, 4),
       m=sizes, k=sizes, n=sizes, bb=st.sampled_from([1, 2, 4]), bm=wide_blocks, bn=wide_blocks, bk=wide_blocks,
       seed=seeds)
def test_batched_matmul(name, dtype, b, m, k, n, bb, bm, bn, bk, seed):
    def bmm(x, y):
        b, m, k = x.shape
        n = y.size(2)
        out = torch.empty([b, m, n], dtype=x.dtype, device=x.device)
        for tb, tm, tn in tl.tile([b, m, n]):
            acc = tl.zeros([tb, tm, tn], dtype=torch.float32)
            for tk in tl.tile(k):
                lhs, rhs = x[tb, tm, tk], y[tb, tk, tn]
                if name == "bmm":
                    acc = acc + torch.bmm(lhs, rhs)
                elif name == "baddbmm":
                    acc = torch.baddbmm(acc, lhs, rhs)
                else:
                    acc = acc + (lhs @ rhs).float()
            out[tb, tm, tn] = acc
        return out

    x, y = data([b, m, k], dtype, seed), data([b, k, n], dtype, seed + 1)
    expected = (x.float() @ y.float()).to(dtype)
    check(interpret(bmm, x, y, block_sizes=[bb, bm, bn, bk]), expected, scale=4 * math.sqrt(k))


# --- loads, stores and gathers ------------------------------------------------------------------
@FAST
@given(dtype=dtypes, index_dtype=st.sampled_from([I32, I64]), vocab=st.integers(1, 20), n=st.integers(1, 30),
       d=st.integers(1, 8), block=blocks, seed=seeds)
def test_gathers(dtype, index_dtype, vocab, n, d, block, seed):
    def embed(idx, table, x):
        n = idx.size(0)
        rows = torch.empty([n, table.size(1)], dtype=table.dtype, device=table.device)
        picked = torch.empty([n], dtype=x.dtype, device=x.device)
        for t in tl.tile(n):
            rows[t, :] = table[idx[t], :]
            picked[t] = x[idx[t]]
        return rows, picked

    idx = torch.randint(0, vocab, [n], generator=torch.Generator().manual_seed(seed)).to(index_dtype)
    table, x = data([vocab, d], dtype, seed + 1), data([vocab], dtype, seed + 2)
    rows, picked = interpret(embed, idx, table, x, block_sizes=[block])
    check(rows, table[idx.long()])
    check(picked, x[idx.long()])


@FAST
@given(dtype=dtypes, m=sizes, n=sizes, block=blocks, seed=seeds)
def test_integer_and_slice_indices(dtype, m, n, block, seed):
    def kernel(x):
        m, n = x.shape
        out = torch.empty([m, 4], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            out[tm, 0] = x[tm, 0]
            out[tm, 1] = x[tm, -1]
            out[tm, 2] = x[tm, :].sum(-1) if x.dtype != torch.int32 else x[tm, n // 2]
            out[tm, 3:4] = x[tm, None, n - 1]
        return out

    x = data([m, n], dtype, seed)
    third = x.sum(-1) if dtype != I32 else x[:, n // 2]
    expected = torch.stack([x[:, 0], x[:, -1], third.to(dtype), x[:, n - 1]], dim=1)
    check(interpret(kernel, x, block_sizes=[block]), expected, scale=math.sqrt(n))


@FAST
@given(n=st.integers(1, 40), block=blocks, seed=seeds)
def test_masked_load_and_store(n, block, seed):
    def kernel(x):
        n = x.size(0)
        out = torch.full([n], -1.0, device=x.device)
        for t in tl.tile(n):
            even = tl.load(x, [t], extra_mask=t.index % 2 == 0)
            tl.store(out, [t], even, extra_mask=x[t] > 0)
        return out

    x = data([n], F32, seed)
    even = torch.where(torch.arange(n) % 2 == 0, x, torch.zeros(()))
    expected = torch.where(x > 0, even, torch.full([n], -1.0))
    check(interpret(kernel, x, block_sizes=[block]), expected)


@FAST
@given(src=st.sampled_from(FLOATS + [I32, torch.bool]), dst=st.sampled_from(FLOATS + [I32, I64]), n=st.integers(1, 40),
       block=blocks, seed=seeds)
def test_stores_cast_to_the_destination_dtype(src, dst, n, block, seed):
    def kernel(x, dst: torch.dtype):
        n = x.size(0)
        out = torch.empty([3, n], dtype=dst, device=x.device)
        for t in tl.tile(n):
            out[0, t] = x[t] * 3 if x.dtype != torch.bool else x[t]
            out[1, t] = 7  # a Python scalar, broadcast and cast
            out[2, t] = 1.5 if dst.is_floating_point else 2
        return out

    x = data([n], src, seed)
    first = x * 3 if src != torch.bool else x
    out = torch.empty([3, n], dtype=dst)
    out[0] = first
    out[1] = 7
    out[2] = 1.5 if dst.is_floating_point else 2
    check(interpret(kernel, x, dst, block_sizes=[block]), out)


@FAST
@given(dtype=dtypes, m=st.integers(0, 12), n=st.integers(0, 12), bm=wide_blocks, bn=wide_blocks,
       layout=st.sampled_from(["transposed", "strided", "offset"]), seed=seeds)
def test_strided_and_empty_inputs(dtype, m, n, bm, bn, layout, seed):
    """Non-contiguous arguments (transposed, every other column, a storage offset) and empty dims."""
    def add(x, y):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape):
            out[t] = x[t] + 2 * y[t]
        return out

    base, other = data([n + 1, 2 * m + 1], dtype, seed), data([m, n], dtype, seed + 1)
    x = {"transposed": base[:n, :m].t(), "strided": base[:n, : 2 * m : 2].t(), "offset": base[1:, 1:m + 1].t()}[layout]
    assert x.shape == (m, n)
    check(interpret(add, x, other, block_sizes=[bm, bn]), x + 2 * other)


@FAST
@given(m=sizes, n=st.integers(1, 40), bm=blocks, bn=blocks, seed=seeds)
def test_argmax_and_cumsum_across_tiles(m, n, bm, bn, seed):
    """Values and indices carried across column tiles; a running sum added to each tile's cumsum."""
    def kernel(x):
        m, n = x.shape
        best_at = torch.empty([m], dtype=torch.int64, device=x.device)
        prefix = torch.empty_like(x)
        for tm in tl.tile(m):
            best = tl.full([tm], float("-inf"), dtype=torch.float32)
            index = tl.zeros([tm], dtype=torch.int64)
            running = tl.zeros([tm], dtype=torch.float32)
            for tn in tl.tile(n):
                v = x[tm, tn]
                local, arg = v.max(dim=1)
                better = local > best
                index = torch.where(better, arg + tn.begin, index)
                best = torch.where(better, local, best)
                prefix[tm, tn] = torch.cumsum(v, dim=1) + running[:, None]
                running = running + v.sum(dim=1)
            best_at[tm] = index
        return best_at, prefix

    x = data([m, n], F32, seed)
    best_at, prefix = interpret(kernel, x, block_sizes=[bm, bn])
    check(best_at, x.argmax(1))
    check(prefix, x.cumsum(1), scale=math.sqrt(n))


@FAST
@given(n=st.integers(1, 40), block=blocks, seed=seeds)
def test_kernel_updating_its_argument_in_place(n, block, seed):
    def scale_(x):
        for t in tl.tile(x.size(0)):
            x[t] = x[t] * 2
        return x

    x = data([n], F32, seed)
    expected = x * 2
    result = interpret(scale_, x, block_sizes=[block])
    assert result is x
    check(x, expected)


# --- loops --------------------------------------------------------------------------------------
@FAST
@given(lengths=st.lists(st.integers(0, 20), min_size=1, max_size=6), d=st.integers(1, 5), block=blocks,
       dtype=float_dtypes, seed=seeds)
def test_jagged_rows(lengths, d, block, dtype, seed):
    def jagged_sum(values, offsets):
        rows = offsets.size(0) - 1
        out = torch.zeros([rows, values.size(1)], dtype=torch.float32, device=values.device)
        for r in tl.grid(rows):
            start, end = offsets[r], offsets[r + 1]
            acc = tl.zeros([values.size(1)], dtype=torch.float32)
            for tv in tl.tile(start, end):
                acc = acc + values[tv, :].to(torch.float32).sum(dim=0)
            out[r, :] = acc
        return out

    offsets = torch.tensor([0] + list(itertools_accumulate(lengths)), dtype=torch.int32)
    values = data([max(int(offsets[-1]), 1), d], dtype, seed)
    expected = torch.stack([values[a:b].float().sum(0) for a, b in zip(offsets[:-1], offsets[1:])])
    check(interpret(jagged_sum, values, offsets, block_sizes=[block]), expected, scale=math.sqrt(max(lengths) + 1))


def itertools_accumulate(values):
    total = 0
    for v in values:
        total += v
        yield total


@FAST
@given(n=st.integers(1, 40), begin=st.integers(0, 10), block=blocks, seed=seeds)
def test_static_begin_end_tiles_and_tile_attributes(n, begin, block, seed):
    def kernel(x, begin: int):
        n = x.size(0)
        out = torch.zeros([6, n], dtype=torch.int32, device=x.device)
        for t in tl.tile(begin, n):
            out[0, t] = t.index
            out[1, t] = t.begin
            out[2, t] = t.end
            out[3, t] = t.id
            out[4, t] = t.block_size
            out[5, t] = t.count
        return out

    begin = min(begin, n)
    x = data([n], F32, seed)
    expected = torch.zeros([6, n], dtype=I32)
    for start in range(begin, n, block):
        end = min(start + block, n)
        count = (n - begin + block - 1) // block  # tiles of the loop, as Helion's tile.count
        expected[:, start:end] = torch.tensor([0, start, end, start // block, block, count])[:, None]
        expected[0, start:end] = torch.arange(start, end)
    check(interpret(kernel, x, begin, block_sizes=[block]), expected)


@FAST
@given(m=sizes, n=st.integers(1, 40), bm=blocks, bn=blocks, seed=seeds)
def test_register_block_size_shares_one_block_between_loops(m, n, bm, bn, seed):
    def online_softmax(x):
        m, n = x.size()
        out = torch.empty_like(x)
        block_n = tl.register_block_size(n)
        for tm in tl.tile(m):
            mi = tl.full([tm], float("-inf"), dtype=torch.float32)
            di = tl.zeros([tm], dtype=torch.float32)
            for tn in tl.tile(n, block_size=block_n):
                values = x[tm, tn]
                mi_next = torch.maximum(mi, values.amax(dim=1))
                di = di * torch.exp(mi - mi_next) + torch.exp(values - mi_next[:, None]).sum(dim=1)
                mi = mi_next
            for tn in tl.tile(n, block_size=block_n):
                out[tm, tn] = torch.exp(x[tm, tn] - mi[:, None]) / di[:, None]
        return out

    x = data([m, n], F32, seed)
    program = tfn.make_ir(online_softmax)(x)
    assert len(program.blocks) == 2  # B0 is block_n, B1 the rows
    check(interpret(online_softmax, x, block_sizes=[bn, bm]), torch.softmax(x, dim=1))


@FAST
@given(n=st.integers(1, 40), block=blocks, seed=seeds)
def test_fixed_block_size_overrides_the_config(n, block, seed):
    def kernel(x):
        out = torch.zeros([x.size(0)], dtype=torch.int32, device=x.device)
        for t in tl.tile(x.size(0), block_size=4):
            out[t] = t.block_size + t.id * 0
        return out

    x = data([n], F32, seed)
    check(interpret(kernel, x, block_sizes=[block]), torch.full([n], 4, dtype=I32))


@FAST
@given(dtype=dtypes, m=sizes, n=sizes, bm=wide_blocks, bn=wide_blocks, seed=seeds)
def test_tile_shape_tuple_and_several_top_level_loops(dtype, m, n, bm, bn, seed):
    def kernel(x, y):
        total = torch.empty_like(x)
        double = torch.empty_like(x)
        for t in tl.tile(x.shape):
            total[t] = x[t] + y[t]
        for tm in tl.tile(x.size(0)):
            for tn in tl.tile(x.size(1)):
                double[tm, tn] = x[tm, tn] * 2
        return total, double

    x, y = data([m, n], dtype, seed), data([m, n], dtype, seed + 1)
    total, double = interpret(kernel, x, y, block_sizes=[bm, bn, bm, bn])
    check(total, x + y)
    check(double, x * 2)


# --- static Python: closures, globals, unrolled ranges, ifs on shapes and dtypes ----------------
GLOBAL_WEIGHT = torch.linspace(-1, 1, 24)
GLOBAL_SCALE = 0.25


def make_scaled_kernel(bias, power):
    def kernel(x):
        n = x.size(0)
        out = torch.empty_like(x)
        for t in tl.tile(n):
            v = x[t] * GLOBAL_WEIGHT[t] * GLOBAL_SCALE + bias[t]
            for _ in range(power - 1):  # unrolled at trace time
                v = v * x[t]
            for i in tl.static_range(2):
                v = v + i
            out[t] = v
        return out

    return kernel


@FAST
@given(power=st.integers(1, 3), block=blocks, seed=seeds)
def test_closures_globals_and_unrolled_ranges(power, block, seed):
    x, bias = data([24], F32, seed), data([24], F32, seed + 1)
    expected = x * GLOBAL_WEIGHT * GLOBAL_SCALE + bias
    for _ in range(power - 1):
        expected = expected * x
    expected = expected + 0 + 1
    kernel = make_scaled_kernel(bias, power)
    check(interpret(kernel, x, block_sizes=[block]), expected, scale=4)
    assert len(tfn.make_ir(kernel)(x).consts) == 2  # GLOBAL_WEIGHT and bias


@FAST
@given(dtype=dtypes, m=sizes, n=sizes, block=blocks, seed=seeds)
def test_static_ifs_on_shapes_and_dtypes(dtype, m, n, block, seed):
    def kernel(x):
        m, n = x.shape
        out = torch.empty([m, n], dtype=torch.float32, device=x.device)
        for tm in tl.tile(m):
            v = x[tm, :]
            if v.dtype in (torch.float16, torch.bfloat16):
                v = v.float() * 2
            elif x.dtype == torch.int32:
                v = v.to(torch.float32) - 1
            if n % 2 == 0 and v.shape[-1] > 3:
                v = v + 10
            out[tm, :] = v
        return out

    x = data([m, n], dtype, seed)
    expected = x.float()
    if dtype in (F16, BF16):
        expected = expected * 2
    elif dtype == I32:
        expected = expected - 1
    if n % 2 == 0 and n > 3:
        expected = expected + 10
    check(interpret(kernel, x, block_sizes=[block]), expected)


def test_default_config_runs():
    """Without a config the interpreter takes the default block sizes."""
    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape):
            out[t] = x[t].sigmoid()
        return out

    x = torch.randn(70, 3)
    check(tfn.interpret(kernel)(x), x.sigmoid())


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
