"""Host code computing on a captured (global or closure) tensor's values: never folded into a Program as
a trace-time constant. A read is keyed and guarded as an argument's is (a change retraces), a host op is
run at every call, and what cannot be seen at trace time is refused naming the line. Each case runs
compiled (Triton's CPU interpreter) and under `tfn.interpret`, against eager PyTorch, before and after
the captured tensor changes (in place, or the name rebound to a tensor of the same metadata)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as hs

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import HostReadsDevice, HostTensorInExpression, TracingError

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")

TABLE = torch.tensor([3, 1, 2])
WEIGHT = torch.ones(8)
SCALE = torch.tensor(2.0)
COUNT = torch.tensor(4)
STATE = {"w": torch.ones(8)}


def prefix(x):
    """The first int(TABLE[0]) elements of x."""
    n = int(TABLE[0])
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for t in tl.tile(n):
        out[t] = x[t]
    return out


def scaled_by_max(x):
    s = TABLE.max().item()
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] * s
    return out


def negated_if(x):
    out = torch.empty_like(x)
    flip = not (TABLE[0] > 0)  # bool() of a host comparison
    for t in tl.tile(x.size(0)):
        out[t] = -x[t] if flip else x[t]
    return out


def affine_of_list(x):
    a, b, _ = TABLE.tolist()
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] * a + b
    return out


def summed_range(x):
    out = torch.empty_like(x)
    steps = range(int(TABLE.sum()))  # a loop as long as a torch op on the capture says
    for t in tl.tile(x.size(0)):
        acc = torch.zeros_like(x[t])
        for i in steps:
            acc = acc + x[t] * i
        out[t] = acc
    return out


def indexed_by_capture(x):
    scale = [1.0, 2.0, 3.0, 4.0, 5.0][COUNT]  # __index__ of a 0-d capture
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] * scale
    return out


def summed_rows(x):
    n = sum(int(length) for length in TABLE)  # iterating a capture: its rows, each read
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for t in tl.tile(n):
        out[t] = x[t]
    return out


def sliced_by_capture(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] * 2
    return out[: TABLE[0]] if 1 in TABLE else out[TABLE[1]:]  # a slice bound and `in`: reads too


def prefix_plus_first(x):
    n = int((x[:1].abs().long() + TABLE)[0])  # one read of an argument and a capture together
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for t in tl.tile(n):
        out[t] = x[t]
    return out


def plus_doubled_weight(x):
    doubled = WEIGHT * 2  # host code on the capture: runs at every call
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] + doubled[t]
    return out


def plus_weight(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] + WEIGHT[t]  # a device load only
    return out


def plus_state(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] + STATE["w"][t]  # a tensor inside a captured dict
    return out


def times_scale(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] * SCALE[()]  # a 0-d capture loaded: a runtime value
    return out


def _table_set(value):
    return lambda: TABLE.copy_(torch.tensor(value))


def _rebind(name, value):
    return lambda: globals().__setitem__(name, value)


CASES = {
    "int": (prefix, lambda x: x[:int(TABLE[0])], [_table_set([5, 1, 2]), _rebind("TABLE", torch.tensor([2, 0, 7]))]),
    "item of a torch op": (scaled_by_max, lambda x: x * TABLE.max(), [_table_set([1, 9, 2]), _table_set([1, 1, 1])]),
    "bool": (negated_if, lambda x: x if TABLE[0] > 0 else -x, [_table_set([-1, 0, 0]), _table_set([3, 0, 0])]),
    "tolist": (affine_of_list, lambda x: x * TABLE[0] + TABLE[1], [_table_set([2, 5, 0]),
                                                                    _rebind("TABLE", torch.tensor([-1, 4, 0]))]),
    "range": (summed_range, lambda x: x * sum(range(int(TABLE.sum()))), [_table_set([0, 0, 1]), _table_set([2, 0, 2])]),
    "index": (indexed_by_capture, lambda x: x * [1.0, 2.0, 3.0, 4.0, 5.0][COUNT], [lambda: COUNT.fill_(1),
                                                                                   _rebind("COUNT", torch.tensor(2))]),
    "iter": (summed_rows, lambda x: x[:int(TABLE.sum())], [_table_set([0, 2, 1]), _table_set([5, 1, 2])]),
    "slice and in": (sliced_by_capture, lambda x: (x * 2)[:TABLE[0]] if 1 in TABLE else (x * 2)[TABLE[1]:],
                     [_table_set([2, 3, 4]), _table_set([5, 1, 0])]),
    "with an argument": (prefix_plus_first, lambda x: x[:int(x[0].abs()) + int(TABLE[0])], [_table_set([1, 0, 0])]),
    "host op then load": (plus_doubled_weight, lambda x: x + WEIGHT * 2, [lambda: WEIGHT.fill_(5.0),
                                                                          _rebind("WEIGHT", torch.arange(8.0))]),
    "load": (plus_weight, lambda x: x + WEIGHT, [lambda: WEIGHT.fill_(-2.0), _rebind("WEIGHT", torch.arange(8.0))]),
    "in a captured dict": (plus_state, lambda x: x + STATE["w"], [lambda: STATE["w"].fill_(3.0),
                                                                  lambda: STATE.__setitem__("w", torch.arange(8.0))]),
    "0-d load": (times_scale, lambda x: x * SCALE, [lambda: SCALE.fill_(-3.0), _rebind("SCALE", torch.tensor(0.5))]),
}


@pytest.fixture(autouse=True)
def _fresh_captures(monkeypatch):
    """Every test starts from the module's captures and leaves them so."""
    for name, value in [("TABLE", torch.tensor([3, 1, 2])), ("WEIGHT", torch.ones(8)), ("SCALE", torch.tensor(2.0)),
                        ("COUNT", torch.tensor(4)), ("STATE", {"w": torch.ones(8)})]:
        monkeypatch.setitem(globals(), name, value)


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_change_to_the_captured_tensor_is_seen(case, mode):
    kernel, eager, changes = CASES[case]
    run = tfn.jit(kernel) if mode == "compiled" else tfn.interpret(kernel)
    x = torch.randn(8)
    for change in [lambda: None, *changes, lambda: None]:
        change()
        torch.testing.assert_close(run(x), eager(x))
        torch.testing.assert_close(run(x=x), eager(x))  # (the keyword path too)


@settings(max_examples=4, deadline=None)
@given(data=hs.data(), values=hs.lists(hs.integers(0, 8), min_size=2, max_size=3))
def test_a_read_capture_under_drawn_configs(data, values):
    kernel, x = tfn.jit(prefix), torch.randn(8)  # (one kernel: each value after the first must retrace)
    config = data.draw(tt.configs(prefix, x))
    for n in values:
        TABLE[0] = n
        tt.assert_matches(kernel, lambda x: x[:n], x, configs=[config])


def test_reads_are_guards_and_a_new_value_traces_once():
    kernel, x = tfn.jit(prefix), torch.randn(8)
    assert "# guard: int(TABLE[0]) == 3  (test_captured_calls.py:" in str(tfn.make_ir(prefix)(x))
    for n in (3, 5, 3, 5, 2):
        TABLE[0] = n
        torch.testing.assert_close(kernel(x), x[:n])
    assert kernel.cache_info().traces == 3


def test_a_loaded_0d_capture_is_a_runtime_value_not_a_constant():
    kernel, x = tfn.jit(times_scale), torch.randn(8)
    for s in (2.0, -1.0, 7.5):
        SCALE.fill_(s)
        torch.testing.assert_close(kernel(x), x * s)
    assert kernel.cache_info().traces == 1  # (a load: read at each call, no retrace)


def test_a_closure_captured_tensor_read_on_the_host():
    lengths = torch.tensor([2, 3])

    def padded(x):
        n = int(lengths.sum())
        out = torch.zeros(n, dtype=x.dtype, device=x.device)
        for t in tl.tile(n):
            out[t] = x[t]
        return out

    for run in (tfn.jit(padded), tfn.interpret(padded)):
        lengths.copy_(torch.tensor([2, 3]))
        x = torch.randn(9)
        torch.testing.assert_close(run(x), x[:5])
        lengths[1] = 6
        torch.testing.assert_close(run(x), x[:8])
        lengths = torch.tensor([1, 0])  # the cell rebound to a tensor of the same metadata
        torch.testing.assert_close(run(x), x[:1])
        lengths = torch.tensor([2, 3])


def bumped(x):
    COUNT.add_(1)  # host code writing the capture: at every call, as torch does
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t]
        WEIGHT[t] = WEIGHT[t] + x[t]  # a tile loop writing the capture
    return out


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_a_kernel_writing_a_capture_behaves_like_torch(mode):
    run = tfn.jit(bumped) if mode == "compiled" else tfn.interpret(bumped)
    x = torch.randn(8)
    for calls in (1, 2, 3):
        torch.testing.assert_close(run(x), x)
        assert int(COUNT) == 4 + calls
        torch.testing.assert_close(WEIGHT, 1 + calls * x)
    fresh = torch.zeros(8)
    globals()["WEIGHT"] = fresh  # rebound: the next call writes the new tensor
    run(x)
    torch.testing.assert_close(fresh, x)


def read_after_write(x):
    for t in tl.tile(x.size(0)):
        WEIGHT[t] = x[t]
    return x[: int(WEIGHT[0])]


def nonzero_sized(x):
    idx = torch.nonzero(TABLE)
    out = torch.zeros(len(idx), dtype=x.dtype, device=x.device)
    for t in tl.tile(len(idx)):
        out[t] = x[t]
    return out


def read_in_a_tile_loop(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] * int(TABLE.sum())
    return out


def indexed_in_a_tile_loop(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] * [1.0, 2.0, 3.0, 4.0, 5.0][COUNT]
    return out


def unloaded_0d(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] * SCALE
    return out


def sized_by_a_tensor(x):
    return x[: torch.empty(TABLE[0]).numel()]


class Holder:
    def __init__(self):
        self.table = torch.tensor([3])


HOLDER = Holder()


def read_of_an_attribute(x):
    return x[: int(HOLDER.table[0])]


@pytest.mark.parametrize("kernel, error, match", [
    (read_after_write, HostReadsDevice, "written before the read"),
    (nonzero_sized, TracingError, "depends on the values"),
    (read_in_a_tile_loop, TracingError, "whole host tensor inside a tile loop"),
    (sized_by_a_tensor, TracingError, r"takes a tensor where it reads a number .* int\(t\)"),
    (indexed_in_a_tile_loop, HostReadsDevice, "a tile loop reads a tensor's value as a Python number"),
    (unloaded_0d, HostTensorInExpression, r"x\[\(\)\] for a 0-d one"),
    (read_of_an_attribute, HostReadsDevice, "Pass it as an argument"),
])
def test_what_cannot_be_seen_at_trace_time_is_refused_naming_the_line(kernel, error, match):
    for run in (tfn.jit(kernel), tfn.interpret(kernel)):
        with pytest.raises(error, match=match) as info:
            run(torch.arange(8.0))
        assert info.value.source is not None and info.value.source.filename == __file__


def test_a_read_capture_compiles_for_hopper():
    tt.compile_for_gpu(prefix, torch.randn(8))


def test_a_read_capture_under_dynamic_shapes():
    kernel = tfn.jit(prefix, static_shapes=False)
    for n, size in [(3, 8), (5, 8), (5, 7), (3, 9)]:
        TABLE[0] = n
        x = torch.randn(size)
        torch.testing.assert_close(kernel(x), x[:n])
    assert kernel.cache_info().traces == 2  # (one per value read; the sizes are symbolic)


def accumulated(x):
    for t in tl.tile(x.size(0)):
        tl.atomic_add(WEIGHT, [t], tl.load(x, [t]))  # tilefn's own functions given a capture
    return x


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_tl_functions_given_a_capture_use_the_tensor_of_each_call(mode):
    run = tfn.jit(accumulated) if mode == "compiled" else tfn.interpret(accumulated)
    x = torch.randn(8)
    run(x)
    run(x)
    torch.testing.assert_close(WEIGHT, 1 + 2 * x)
    globals()["WEIGHT"] = fresh = torch.zeros(8)
    run(x)
    torch.testing.assert_close(fresh, x)
