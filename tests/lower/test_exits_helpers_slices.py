"""`continue` under an `if` on a device scalar, helper functions that branch and return on device
scalars, and slices with device bounds: compiled (Triton's CPU interpreter), `tfn.interpret` and eager
PyTorch written here agree under drawn configs, and the kernels compile for sm_90."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from tilefn import lang as tl
from tilefn.testing import assert_matches, compile_for_gpu

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
SETTINGS = settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
I32 = torch.int32


def ignored_rows_zeroed(x, labels, ignore: int):
    """Helion's jsd: a row whose label is ignored is zeroed and the rest of its work skipped."""
    out = torch.empty_like(x)
    for tm in tl.tile(x.size(0), block_size=1):
        if labels[tm] == ignore:
            for tn in tl.tile(x.size(1)):
                out[tm, tn] = 0.0
            continue
        for tn in tl.tile(x.size(1)):
            out[tm, tn] = torch.exp(x[tm, tn])
    return out


def ignored_rows_zeroed_ref(x, labels, ignore):
    return torch.where((labels == ignore)[:, None], 0.0, torch.exp(x))


@SETTINGS
@given(rows=hs.integers(1, 6), cols=hs.integers(1, 50), seed=hs.integers(0, 2 ** 16))
def test_continue_in_a_grid_loop_skips_the_rest_of_a_programs_work(rows, cols, seed):
    g = torch.Generator().manual_seed(seed)
    x, labels = torch.randn(rows, cols, generator=g), torch.randint(-1, 2, (rows,), generator=g, dtype=I32)
    assert_matches(ignored_rows_zeroed, ignored_rows_zeroed_ref, x, labels, -1, configs=2)


def sum_of_kept_chunks(x, keep):
    """An inner loop whose iterations `continue` past chunks `keep` marks 0: the carry keeps its value."""
    out = torch.empty(x.size(0))
    for i in tl.grid(x.size(0)):
        acc = torch.zeros([], dtype=torch.float32)
        for j in tl.grid(x.size(1)):
            if keep[j] == 0:
                continue
            acc = acc + x[i, j]
        out[i] = acc
    return out


@SETTINGS
@given(rows=hs.integers(1, 5), cols=hs.integers(1, 12), seed=hs.integers(0, 2 ** 16))
def test_continue_in_an_inner_loop_keeps_the_carries(rows, cols, seed):
    g = torch.Generator().manual_seed(seed)
    x, keep = torch.randn(rows, cols, generator=g), torch.randint(0, 2, (cols,), generator=g, dtype=I32)
    assert_matches(sum_of_kept_chunks, lambda x, keep: (x * keep).sum(1), x, keep, configs=1)


def _gate(v, f):
    """A helper the kernel calls: branches and returns on a device scalar."""
    if f > 0:
        return v * 2, f
    elif f < 0:
        return _shifted(v, -1.0), f
    return v, f * 0


def _shifted(v, by):
    return torch.where(v > by, v, by)  # a helper of a helper, without branches


def gated_rows(x, flags):
    out = torch.empty_like(x)
    seen = torch.empty_like(flags)
    for i in tl.grid(x.size(0)):
        y, f = _gate(x[i, :], flags[i])
        out[i, :] = y
        seen[i] = f
    return out, seen


def gated_rows_ref(x, flags):
    f = flags[:, None]
    out = torch.where(f > 0, x * 2, torch.where(f < 0, torch.clamp(x, min=-1.0), x))
    return out, torch.where(flags != 0, flags, 0)


@SETTINGS
@given(rows=hs.integers(1, 6), cols=hs.integers(1, 40), seed=hs.integers(0, 2 ** 16))
def test_a_helper_function_branches_and_returns_on_device_scalars(rows, cols, seed):
    g = torch.Generator().manual_seed(seed)
    x, flags = torch.randn(rows, cols, generator=g), torch.randint(-2, 3, (rows,), generator=g, dtype=I32)
    assert_matches(gated_rows, gated_rows_ref, x, flags, configs=2)


def bias_window(x, starts, bias):
    """`bias[h : h + 4]` with a loaded `h`, and `x[t.begin * 2 : t.begin * 2 + 2]` of a tile's begin."""
    out = torch.empty(starts.size(0), 4)
    pairs = torch.empty(x.size(0) // 2)
    for i in tl.grid(starts.size(0)):
        h = starts[i]
        out[i, :] = x[i, :4] + bias[h : h + 4]
    for t in tl.tile(x.size(0) // 2, block_size=1):
        pairs[t.begin] = x[t.begin * 2 : t.begin * 2 + 2, 0].sum()
    return out, pairs


def bias_window_ref(x, starts, bias):
    out = torch.stack([x[i, :4] + bias[h: h + 4] for i, h in enumerate(starts.tolist())])
    return out, x[: x.size(0) // 2 * 2, 0].view(-1, 2).sum(1)


@SETTINGS
@given(rows=hs.integers(2, 7), n_bias=hs.integers(4, 20), seed=hs.integers(0, 2 ** 16))
def test_slices_with_device_bounds_read_a_static_length(rows, n_bias, seed):
    g = torch.Generator().manual_seed(seed)
    x, bias = torch.randn(rows, 5, generator=g), torch.randn(n_bias, generator=g)
    starts = torch.randint(0, n_bias - 3, (rows,), generator=g, dtype=I32)
    assert_matches(bias_window, bias_window_ref, x, starts, bias, configs=1)


def shifted_rows(x, starts, length: int):
    """Helion's jagged_hstu_attn: rows `t.index + start` may run past the tensor's end (and a device
    slice too); those lanes read 0 and are not stored, as a tile's lanes past its axis."""
    out = torch.full([starts.size(0), length, x.size(1)], -1.0)
    back = torch.zeros_like(x)
    for i in tl.grid(starts.size(0)):
        s = starts[i]
        for t in tl.tile(length):
            rows = x[t.index + s, :]
            out[i, t, :] = rows + x[s : s + 2, :].sum(0)
            back[t.index + s, :] = rows * 2
    return out, back


def shifted_rows_ref(x, starts, length):
    padded = torch.cat([x, torch.zeros(length + 2, x.size(1))])
    out = torch.stack([padded[s: s + length] + padded[s: s + 2].sum(0) for s in starts.tolist()])
    r = torch.arange(x.size(0))[:, None]
    written = ((r >= starts[None, :]) & (r < starts[None, :] + length)).any(1, keepdim=True)
    return out, torch.where(written, x * 2, 0.0)


@SETTINGS
@given(n=hs.integers(1, 12), length=hs.integers(1, 20), seed=hs.integers(0, 2 ** 16))
def test_index_tensors_past_the_tensor_are_masked_by_its_bounds(n, length, seed):
    g = torch.Generator().manual_seed(seed)
    x, starts = torch.randn(n, 3, generator=g), torch.randint(0, n, (2,), generator=g, dtype=I32)
    assert_matches(shifted_rows, shifted_rows_ref, x, starts, length, configs=2)


def test_early_exits_helpers_and_device_slices_compile_for_sm90():
    compile_for_gpu(shifted_rows, torch.randn(8, 3), torch.tensor([2, 5], dtype=I32), 6)
    x, labels = torch.randn(4, 16), torch.tensor([1, -1, 0, -1], dtype=I32)
    compile_for_gpu(ignored_rows_zeroed, x, labels, -1)
    compile_for_gpu(sum_of_kept_chunks, x, torch.tensor([1, 0] * 8, dtype=I32))
    compile_for_gpu(gated_rows, x, labels)
    compile_for_gpu(bias_window, x, torch.tensor([0, 3, 1, 2], dtype=I32), torch.randn(8))
