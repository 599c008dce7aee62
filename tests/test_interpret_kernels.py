"""`tfn.interpret` against eager PyTorch: matrix products, loads and stores, loops, static Python."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tilefn as tfn
from tilefn import lang as tl
from interpret_cases import (
    F32, F16, BF16, I32, I64, FLOATS, FAST, sizes, blocks, wide_blocks, seeds, float_dtypes, dtypes, check, data, interpret)


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
