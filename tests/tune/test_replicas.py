"""A tuning's arguments copied to another device (the CPU standing in for it): storages copied once,
views, offsets and aliasing kept; which kernels can be copied; which devices TILEFN_TUNE_DEVICES picks."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import SettingsError
from tilefn.tune.replicas import Replica, movable, tune_devices


def test_a_copy_keeps_views_offsets_and_aliasing_and_owns_its_storage():
    base = torch.arange(24.0).reshape(4, 6)
    args = (base.t(), [base[1:, 2:]], {"k": torch.arange(3)}, 2.5, "text")
    home = Replica.of(args)
    copy = home.on(torch.device("cpu"))
    transposed, (window,), table, number, text = copy.args
    for got, want in [(transposed, args[0]), (window, args[1][0]), (table["k"], args[2]["k"])]:
        assert torch.equal(got, want) and got.stride() == want.stride() and got.dtype == want.dtype
        assert got.storage_offset() == want.storage_offset() and got.data_ptr() != want.data_ptr()
    assert transposed.untyped_storage().data_ptr() == window.untyped_storage().data_ptr()  # still one buffer
    window.fill_(-1.0)  # writes through the shared storage, as the original views would
    assert transposed[2, 1] == -1.0 and base[1, 2] == 8.0  # ... and never into the original
    assert (number, text) == (2.5, "text") and len(copy.inputs) == 3
    assert [copy] != [home] and [home] == [home]  # replicas compare by identity (never tensor by tensor)
    copy.restore()
    assert torch.equal(transposed, args[0]) and torch.equal(window, args[1][0])


def scaled(x, g):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape):
        out[t] = x[t] * g[t]
    return out


def test_an_expanded_argument_is_not_put_back_and_can_be_tuned_over(tmp_path, monkeypatch):
    """The cotangent `.sum().backward()` passes is `ones(()).expand(...)`: no kernel writes it (torch refuses
    to copy into it), so a replica puts back only the other arguments."""
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path))
    x, g = torch.randn(8, 32), torch.full((), 3.0).expand(8, 32)
    home, before = Replica.of((x, g)), x.clone()
    x.add_(1.0)
    home.restore()
    assert torch.equal(x, before) and g.stride() == (0, 0) and torch.equal(g, torch.full((8, 32), 3.0))
    tuned = tfn.tune(tfn.jit(scaled), effort="quick", use_cache=False, verbose=False)
    torch.testing.assert_close(tuned(x, g), x * 3.0)


def test_a_copy_carries_the_trusted_outputs_and_gradients_flags():
    x = torch.randn(5, requires_grad=True)
    home = Replica.of((x, torch.ones(2, dtype=torch.int32)), expected=[torch.full([3], 7.0)])
    copy = home.on(torch.device("cpu"))
    assert copy.args[0].requires_grad and not copy.args[1].requires_grad
    assert torch.equal(copy.expected[0], home.expected[0]) and copy.expected[0] is not home.expected[0]


GLOBAL = torch.randn(8)


def reads_global(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] + GLOBAL[t]
    return out


def sums_pieces(pieces, scale: float):
    out = torch.empty_like(pieces[0])
    for t in tl.tile(out.shape[0]):
        out[t] = (pieces[0][t] + pieces[1][t]) * scale
    return out


def test_kernels_with_tensors_only_in_argument_containers_can_be_copied():
    x = torch.randn(8)
    program = tfn.jit(sums_pieces).trace_and_bind(([x, x * 2], 0.5), {})[0]
    assert movable(program)
    assert not movable(tfn.jit(reads_global).trace_and_bind((x,), {})[0])  # a captured tensor stays put


def test_the_cpu_tunes_on_itself_whatever_the_variable(monkeypatch):
    monkeypatch.setenv("TILEFN_TUNE_DEVICES", "0,1")
    assert tune_devices(torch.device("cpu")) == [torch.device("cpu")]


@pytest.mark.parametrize("text, home, want", [("", 1, [1, 0, 2]), ("0,1", 0, [0, 1]), ("2,0", 1, [2, 0]),
                                              ("1", 1, [1])])
def test_cuda_devices_are_the_listed_ones_home_first(monkeypatch, text, home, want):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setenv("TILEFN_TUNE_DEVICES", text)
    assert tune_devices(torch.device("cuda", home)) == [torch.device("cuda", i) for i in want]


def test_a_bad_variable_is_refused_when_tuning_starts(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("TILEFN_TUNE_DEVICES", "0,3")
    with pytest.raises(SettingsError, match=r"device 3 is not visible \(there are 2: 0 to 1\)"):
        tune_devices(torch.device("cuda", 0))
