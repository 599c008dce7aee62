"""`if`/`elif`/`else` and `while` on device scalars, and min/max of them: compiled (Triton's CPU
interpreter), `tfn.interpret` and eager PyTorch written here agree under drawn configs, and the
kernels compile for sm_90."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from tilefn import lang as tl
from tilefn.testing import assert_matches, compile_for_gpu

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
I32 = torch.int32


def rows_by_flag(x, flags):
    out = torch.empty_like(x)
    for i in tl.grid(x.size(0)):
        f = flags[i]
        row = x[i, :]
        if f > 0:
            y = row * 2
        elif f < 0:
            y = row - 1
        else:
            y = row
        out[i, :] = y
    return out


def rows_by_flag_ref(x, flags):
    f = flags[:, None]
    return torch.where(f > 0, x * 2, torch.where(f < 0, x - 1, x))


@SETTINGS
@given(rows=hs.integers(1, 6), cols=hs.integers(1, 40), seed=hs.integers(0, 2 ** 16))
def test_if_elif_else_on_a_loaded_flag(rows, cols, seed):
    g = torch.Generator().manual_seed(seed)
    x, flags = torch.randn(rows, cols, generator=g), torch.randint(-2, 3, (rows,), generator=g, dtype=I32)
    assert_matches(rows_by_flag, rows_by_flag_ref, x, flags, configs=2)


def stores_in_branches(x, flags):
    pos, neg = torch.zeros_like(x), torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        if flags[i] != 0:
            for t in tl.tile(x.size(1)):
                pos[i, t] = x[i, t] + 1.0
        else:
            for t in tl.tile(x.size(1)):
                neg[i, t] = x[i, t] - 1.0
    return pos, neg


def stores_in_branches_ref(x, flags):
    on = (flags != 0)[:, None]
    return torch.where(on, x + 1, 0.0), torch.where(on, 0.0, x - 1)


@SETTINGS
@given(rows=hs.integers(1, 5), cols=hs.integers(1, 70), seed=hs.integers(0, 2 ** 16))
def test_stores_and_inner_loops_inside_branches_run_only_where_taken(rows, cols, seed):
    g = torch.Generator().manual_seed(seed)
    x, flags = torch.randn(rows, cols, generator=g), torch.randint(0, 2, (rows,), generator=g, dtype=I32)
    assert_matches(stores_in_branches, stores_in_branches_ref, x, flags, configs=2)


def grouped_matmul(a, b, offsets):
    """Helion's grouped GEMM: each group's rows, only for groups that have any."""
    total, k = a.shape
    n = b.size(1)
    out = torch.zeros(total, n, dtype=a.dtype, device=a.device)
    for g in tl.grid(offsets.size(0) - 1):
        start = offsets[g]
        end = offsets[g + 1]
        m = end - start
        if m != 0:
            for tm, tn in tl.tile([m, n]):
                acc = tl.zeros([tm, tn], dtype=torch.float32)
                for tk in tl.tile(k):
                    acc = torch.addmm(acc, a[start + tm.index, tk], b[tk, tn])
                out[start + tm.index, tn] = acc.to(out.dtype)
    return out


def grouped_matmul_ref(a, b, offsets):
    out = torch.zeros(a.size(0), b.size(1))
    bounds = offsets.tolist()
    for start, end in zip(bounds, bounds[1:]):
        out[start:end] = a[start:end] @ b
    return out


@SETTINGS
@given(sizes=hs.lists(hs.integers(0, 9), min_size=1, max_size=4), k=hs.integers(1, 20), n=hs.integers(1, 20),
       seed=hs.integers(0, 2 ** 16))
def test_grouped_matmul_guards_its_inner_loops_with_an_if(sizes, k, n, seed):
    g = torch.Generator().manual_seed(seed)
    offsets = torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()], dtype=I32)
    a, b = torch.randn(max(int(offsets[-1]), 1), k, generator=g), torch.randn(k, n, generator=g)
    assert_matches(grouped_matmul, grouped_matmul_ref, a, b, offsets, configs=2)


def first_split_adds_bias(x, y):
    """Helion's matmul_split_k epilogue: a tile-shaped carry rebound in an `if` on `tile.begin`."""
    m, k = x.shape
    out = torch.zeros(m, y.size(1))
    for tm, tn, tk in tl.tile([m, y.size(1), k], block_size=[None, None, 8]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for ik in tl.tile(tk.begin, tk.end):
            acc = torch.addmm(acc, x[tm, ik], y[ik, tn])
        if tk.begin == 0:
            acc = acc + 1.0
        tl.atomic_add(out, [tm, tn], acc)
    return out


@SETTINGS
@given(m=hs.integers(1, 20), k=hs.integers(1, 40), n=hs.integers(1, 20), seed=hs.integers(0, 2 ** 16))
def test_a_tile_value_rebound_in_one_branch_merges_with_its_value_before(m, k, n, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    assert_matches(first_split_adds_bias, lambda x, y: x @ y + 1.0, x, y, configs=2)


def scaled_by_flags(x, flags):
    out, threes = torch.zeros_like(x), torch.zeros_like(x)
    for i in tl.grid(x.size(0)):
        f = flags[i]
        scale = 1.0  # a Python number in one branch merges as a device scalar
        if f > 0 and f < 3:
            scale = x[i] * 0.0 + 2.0
        if not f > 1 or 0 < f < 2:
            out[i] = x[i] * scale
    for t in tl.tile(x.size(0), block_size=1):
        if (flags[t] == 3).sum():  # a reduced (int64) condition, as Helion's tests write it
            threes[t] = -x[t]
    return out, threes


def scaled_by_flags_ref(x, flags):
    scale = torch.where((flags > 0) & (flags < 3), 2.0, 1.0)
    out = torch.where(~(flags > 1) | ((flags > 0) & (flags < 2)), x * scale, 0.0)
    return out, torch.where(flags == 3, -x, 0.0)


@SETTINGS
@given(n=hs.integers(1, 10), seed=hs.integers(0, 2 ** 16))
def test_and_or_not_chained_comparisons_reductions_and_python_numbers(n, seed):
    g = torch.Generator().manual_seed(seed)
    x, flags = torch.randn(n, generator=g), torch.randint(-1, 5, (n,), generator=g, dtype=I32)
    assert_matches(scaled_by_flags, scaled_by_flags_ref, x, flags, configs=1)


def collatz_steps(x):
    out = torch.empty_like(x)
    for i in tl.grid(x.size(0)):
        v = x[i]
        count = torch.zeros([], dtype=torch.int32)
        while v > 1:
            v = torch.where(v % 2 == 0, v // 2, 3 * v + 1)
            count = count + 1
        out[i] = count
    return out


def collatz_steps_ref(x):
    counts = []
    for v in x.tolist():
        c = 0
        while v > 1:
            v, c = (v // 2 if v % 2 == 0 else 3 * v + 1), c + 1
        counts.append(c)
    return torch.tensor(counts, dtype=x.dtype)


def repeated_add(x, times):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        acc = torch.zeros_like(x[t])
        steps = torch.zeros([], dtype=torch.int32)
        while steps < times[0]:
            acc = acc + x[t]
            steps = steps + 1
        out[t] = acc
    return out


@SETTINGS
@given(values=hs.lists(hs.integers(1, 40), min_size=1, max_size=6), n=hs.integers(1, 50), times=hs.integers(0, 4))
def test_while_loops_carry_their_condition_and_values(values, n, times):
    assert_matches(collatz_steps, collatz_steps_ref, torch.tensor(values, dtype=I32), configs=1)
    x = torch.randn(n)
    assert_matches(repeated_add, lambda x, t: x * int(t[0]), x, torch.tensor([times], dtype=I32), configs=2)


def clamped_window(x, bounds):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        low = max(bounds[0], 0)
        high = min(bounds[1], x.size(0), 50)
        inside = (t.index >= low) & (t.index < high)
        out[t] = torch.where(inside, x[t], -x[t])
    return out


def clamped_window_ref(x, bounds):
    low, high = max(int(bounds[0]), 0), min(int(bounds[1]), x.size(0), 50)
    i = torch.arange(x.size(0))
    return torch.where((i >= low) & (i < high), x, -x)


@SETTINGS
@given(n=hs.integers(1, 80), low=hs.integers(-5, 80), high=hs.integers(-5, 80))
def test_builtin_min_and_max_of_device_scalars(n, low, high):
    x = torch.randn(n)
    assert_matches(clamped_window, clamped_window_ref, x, torch.tensor([low, high], dtype=I32), configs=2)


def test_conds_and_whiles_compile_for_sm90():
    x, flags = torch.randn(4, 16), torch.tensor([1, -1, 0, 2], dtype=I32)
    compile_for_gpu(rows_by_flag, x, flags)
    compile_for_gpu(stores_in_branches, x, flags)
    compile_for_gpu(grouped_matmul, torch.randn(12, 16), torch.randn(16, 16), torch.tensor([0, 5, 5, 12], dtype=I32))
    compile_for_gpu(first_split_adds_bias, torch.randn(16, 32), torch.randn(32, 16))
    compile_for_gpu(collatz_steps, torch.tensor([3, 7], dtype=I32))
    ptx = compile_for_gpu(repeated_add, torch.randn(64), torch.tensor([3], dtype=I32)).asm["ptx"]
    assert "bra" in ptx  # the while is a real loop on the device
