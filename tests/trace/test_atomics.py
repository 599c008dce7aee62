"""Tracing atomics: their IR and printed form, and the errors for bad targets, orderings, dtypes and shapes."""
from __future__ import annotations

import re

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ShapeError, TracingError


def _ir(fn, *args):
    return str(tfn.make_ir(fn)(*args))


def test_atomic_prints_its_ordering_target_and_value():
    def k(out, idx, x):
        for t in tl.tile(idx.shape[0]):
            tl.atomic_max(out, [idx[t]], x[t], sem="acq_rel", scope="cta")
        return out

    text = _ir(k, torch.zeros(4), torch.zeros(9, dtype=torch.int64), torch.zeros(9))
    atomic = re.search(r"v\d+: f32\[t\] = atomic_max\[sem=acq_rel, scope=cta\] out\[v0\] <- v1 mask=(v\d+)", text)
    assert atomic  # old values: the value's shape; the mask: the index's bounds, 0 <= idx < 4
    assert re.search(rf"{atomic.group(1)}: b1\[t\] = logical_and (v\d+), (v\d+)", text)
    assert "ge v0, 0" in text and "lt v0, 4" in text


def test_an_atomic_through_tiles_only_has_no_mask():
    def k(out, x):
        for t in tl.tile(x.shape[0]):
            tl.atomic_add(out, [t], x[t])
        return out

    text = _ir(k, torch.zeros(9), torch.zeros(9))
    assert "atomic_add[sem=relaxed, scope=gpu] out[t] <- v0\n" in text


def test_scalar_values_fill_the_indexed_shape_in_the_target_dtype():
    def k(out):
        for t in tl.tile(out.shape[0]):
            tl.atomic_add(out, [t.begin], 1)
        return out

    text = _ir(k, torch.zeros(6, dtype=torch.int32))
    assert "i32[] = full[value=1]" in text and "atomic_add[sem=relaxed, scope=gpu] out[" in text


def _one(kernel, *args):
    return lambda: tfn.make_ir(kernel)(*args)


def test_bad_sem_and_scope_are_refused():
    def bad_sem(out):
        for t in tl.tile(out.shape[0]):
            tl.atomic_add(out, [t], 1.0, sem="seq_cst")
        return out

    def bad_scope(out):
        for t in tl.tile(out.shape[0]):
            tl.atomic_add(out, [t], 1.0, scope="grid")
        return out

    with pytest.raises(TracingError, match=r"sem='seq_cst'.*'relaxed', 'acquire', 'release', 'acq_rel'") as e:
        _one(bad_sem, torch.zeros(4))()
    assert "test_atomics.py" in str(e.value)
    with pytest.raises(TracingError, match=r"scope='grid'.*'gpu', 'cta', 'sys'"):
        _one(bad_scope, torch.zeros(4))()


def test_device_value_target_is_refused():
    def k(x):
        for t in tl.tile(x.shape[0]):
            acc = tl.zeros([t])
            tl.atomic_add(acc, [t], x[t])
        return x

    with pytest.raises(TracingError, match="not a device value"):
        _one(k, torch.zeros(8))()


@pytest.mark.parametrize("name, dtype", [("atomic_max", torch.bfloat16), ("atomic_and", torch.float32),
                                         ("atomic_add", torch.int16), ("atomic_add", torch.bool)])
def test_dtypes_triton_has_no_atomic_for_are_refused(name, dtype):
    def k(out):
        for t in tl.tile(out.shape[0]):
            getattr(tl, name)(out, [t], out[t])
        return out

    with pytest.raises(TracingError, match=f"{name}\\(\\) on a .* tensor: Triton's {name} takes"):
        _one(k, torch.zeros(4, dtype=dtype))()


def test_value_that_does_not_broadcast_is_a_shape_error():
    def k(out, x):
        for t in tl.tile(out.shape[0]):
            tl.atomic_add(out, [t, slice(0, 3)], x[t, :])
        return out

    with pytest.raises(ShapeError, match=r"does not broadcast with the indexed shape"):
        _one(k, torch.zeros(8, 3), torch.zeros(8, 5))()


def test_read_modify_write_through_a_gather_index_says_use_atomic_add():
    def racy(out, idx, x):
        for t in tl.tile(idx.shape[0]):
            out[idx[t]] += x[t]
        return out

    def racy_max(out, idx, x):
        for t in tl.tile(idx.shape[0]):
            i = idx[t]
            out[i] = torch.maximum(out[i], x[t] * 2)
        return out

    args = torch.zeros(4), torch.zeros(9, dtype=torch.int64), torch.zeros(9)
    for kernel in (racy, racy_max):
        with pytest.raises(TracingError, match=r"tl.atomic_add\(out, \[idx\], v\)") as e:
            _one(kernel, *args)()
        assert "test_atomics.py" in str(e.value)


def test_stores_through_tiles_or_other_gathers_are_not_refused():
    def tile_update(out, x):
        for t in tl.tile(x.shape[0]):
            out[t] += x[t]
        return out

    def permute(out, idx, x):
        for t in tl.tile(idx.shape[0]):
            i = idx[t]
            out[i] = x[i] + 1
        return out

    x = torch.randn(9)
    assert torch.allclose(tfn.interpret(tile_update)(torch.ones(9), x), 1 + x)
    idx = torch.randperm(9)
    want = torch.zeros(9)
    want[idx] = x[idx] + 1
    assert torch.allclose(tfn.interpret(permute)(torch.ones(9), idx, x), want)
