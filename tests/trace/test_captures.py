"""Captured globals and closure cells: every call sees their current values (no stale Program)."""
from __future__ import annotations

import numpy as np
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.trace.captures import Capture, capture_key, captures_of

SCALE = 2.0
OFFSET = torch.ones(8)
TABLE = {"shift": 1.0}


def scaled(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * SCALE + OFFSET[t] + TABLE["shift"]
    return out


def want(x):
    return x * SCALE + OFFSET + TABLE["shift"]


def test_captures_list_globals_and_cells_but_not_modules():
    names = [c.name for c in captures_of(scaled)]
    assert names == ["SCALE", "OFFSET", "TABLE"]  # torch, tl: modules are left out
    k = 3

    def inner(x):
        return x + k

    (cell,) = captures_of(inner)
    assert isinstance(cell, Capture) and cell.name == "k" and cell.read() == 3


def test_the_key_follows_values_and_tensor_metadata_not_tensor_data():
    captures = captures_of(scaled)
    before = capture_key(captures)
    OFFSET.add_(1)  # data only: same key (the kernel reads the data at each call)
    assert capture_key(captures) == before
    TABLE["shift"] = 7.0
    assert capture_key(captures) != before
    TABLE["shift"] = 1.0
    assert capture_key(captures) == before
    OFFSET.sub_(1)


def test_rebound_globals_mutated_dicts_and_rebound_tensors_are_seen_on_the_fast_path(monkeypatch):
    kernel = tfn.jit(scaled)
    x = torch.randn(8)
    for change in (lambda: None, lambda: monkeypatch.setitem(globals(), "SCALE", 3.0),
                   lambda: TABLE.__setitem__("shift", 5.0),
                   lambda: monkeypatch.setitem(globals(), "OFFSET", torch.full((8,), 10.0)),
                   lambda: OFFSET.fill_(20.0)):
        change()
        torch.testing.assert_close(kernel(x), want(x))  # positional: the guard fast path
        torch.testing.assert_close(kernel(x=x), want(x))
        torch.testing.assert_close(tfn.interpret(kernel)(x), want(x))
    TABLE["shift"] = 1.0


def test_a_rebound_closure_variable_is_seen():
    shift = 1.0

    def shifted(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = x[t] + shift
        return out

    kernel, x = tfn.jit(shifted), torch.randn(16)
    torch.testing.assert_close(kernel(x), x + 1.0)
    shift = 4.0
    torch.testing.assert_close(kernel(x), x + 4.0)
    torch.testing.assert_close(tfn.interpret(shifted)(x), x + 4.0)
    assert shift == 4.0


def test_a_captured_tensor_of_new_metadata_retraces():
    kernel, x = tfn.jit(scaled), torch.randn(8)
    kernel(x)
    global OFFSET
    saved, OFFSET = OFFSET, torch.ones(16)[::2]  # new strides: a new Program
    try:
        torch.testing.assert_close(kernel(x), want(x))
    finally:
        OFFSET = saved


LIMITS = np.array([3, 1])


def limited(x):
    n = int(LIMITS[0])  # numpy: read while tracing, so the key holds its values
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for t in tl.tile(n):
        out[t] = x[t] * 2
    return out


def test_a_captured_numpy_array_changed_in_place_retraces():
    x = torch.randn(8)
    for run in (tfn.jit(limited), tfn.interpret(limited)):
        for n in (3, 6, 3):
            LIMITS[0] = n
            torch.testing.assert_close(run(x), x[:n] * 2)
    LIMITS[0] = 3
