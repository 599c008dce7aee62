"""Signal pads (tl.signal / tl.wait, Helion's hl.signal / hl.wait): compiled (Triton's CPU interpreter)
vs tfn.interpret vs eager PyTorch, the interpreter refusing a wait nothing could end, the front end's
errors, the printed IR, and compilation for sm_90 with no GPU."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as hs

import tilefn as tfn
import tilefn.helion.language as hl
from tilefn import lang as tl
from tilefn.errors import TilefnError, TracingError
from tilefn.testing import assert_matches, compile_for_gpu

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def flag_each_element(x, pad):
    """Doubles x, raises a flag per element (returning the flags' old values), then waits on them."""
    out = torch.empty_like(x)
    old = torch.empty_like(pad)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * 2
        old[t] = tl.signal(pad, [t])
        tl.wait(pad, [t], signal=1)
    return out, old


def flag_each_element_eager(x, pad):
    old = pad.clone()
    pad.fill_(1)
    return x * 2, old


@settings(max_examples=8, deadline=None)
@given(n=hs.integers(1, 200), start=hs.integers(-3, 3), dtype=hs.sampled_from([torch.int32, torch.int64]))
def test_a_signal_sets_the_flags_and_returns_the_old_ones(n, start, dtype):
    x, pad = torch.randn(n), torch.full([n], start, dtype=dtype)
    assert_matches(flag_each_element, flag_each_element_eager, x, pad, configs=2)


def add_three(pad, x):
    for t in tl.tile(x.shape[0]):
        tl.signal(pad, [t], signal=3, op="atomic_add", sem="relaxed", skip_sync=True)
        tl.wait(pad, [t], signal=3, sem="relaxed")  # (pad starts at 0)
        x[t] = x[t] + 1


def add_three_eager(pad, x):
    pad += 3
    x += 1


@settings(max_examples=6, deadline=None)
@given(n=hs.integers(1, 100))
def test_an_added_signal_counts_and_a_relaxed_wait_sees_it(n):
    assert_matches(add_three, add_three_eager, torch.zeros([n], dtype=torch.int32), torch.randn(n), configs=2)


def locked_sum(x, lock):
    """Every program takes a spin lock (wait for 0, swap in 1), adds its tile, and releases it."""
    total = torch.zeros([1], dtype=x.dtype, device=x.device)
    for t in tl.tile(x.shape[0]):
        tl.wait(lock, [0], signal=0, update=1, op="atomic_cas")
        tl.atomic_add(total, [0], x[t].sum())
        tl.signal(lock, [0], signal=0)
    return total


@settings(max_examples=6, deadline=None)
@given(n=hs.integers(1, 300), seed=hs.integers(0, 2 ** 16))
def test_a_compare_and_swap_wait_takes_a_lock_and_a_signal_releases_it(n, seed):
    x = torch.randint(-50, 50, (n,), dtype=torch.int32, generator=torch.Generator().manual_seed(seed))
    lock = torch.zeros([1], dtype=torch.int32)
    assert_matches(locked_sum, lambda x, lock: x.sum().reshape(1).to(torch.int32), x, lock, configs=2)


def cas_signal(flag, x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t]
    for t in tl.tile(1):
        tl.signal(flag, [0], signal=7, wait_for=5, op="atomic_cas")
    return out


def test_a_compare_and_swap_signal_swaps_once_the_entry_holds_wait_for():
    flag = torch.tensor([5], dtype=torch.int32)
    assert_matches(cas_signal, lambda flag, x: (flag.fill_(7), x.clone())[1], flag, torch.randn(10), configs=1)


def test_the_interpreter_refuses_a_wait_nothing_could_end():
    pad = torch.zeros([4], dtype=torch.int32)
    with pytest.raises(TilefnError, match=r"waits for pad entries equal to 1, but they hold \[0\]") as info:
        tfn.interpret(wait_only)(pad)
    assert "test_signals.py" in str(info.value) and "tl.wait(pad, [t])" in str(info.value)


def wait_only(pad):
    for t in tl.tile(pad.shape[0]):
        tl.wait(pad, [t])


def with_options(**options):
    def kernel(pad, x):
        for t in tl.tile(x.shape[0]):
            tl.signal(pad, [t], **options)
    return kernel


@pytest.mark.parametrize("options, message", [
    ({"op": "atomic_or"}, "signal(op='atomic_or'): op is one of 'atomic_xchg', 'atomic_add', 'atomic_cas'"),
    ({"sem": "acquire"}, "signal(sem='acquire'): sem is one of 'relaxed', 'release', 'acq_rel'"),
    ({"scope": "cta"}, "signal(scope='cta'): scope is one of 'gpu', 'sys'"),
    ({"wait_for": 0}, "wait_for goes with op='atomic_cas' and only with it"),
    ({"op": "atomic_cas", "wait_for": 0}, "signal(op='atomic_cas') on several entries (a tile or slice index): a compare-and-swap spin takes one entry"),
    ({"signal": 1.5}, "signal(signal=1.5): signal is a Python int")])
def test_bad_signals_are_refused_at_the_users_line(options, message):
    with pytest.raises(TracingError) as info:
        tfn.interpret(with_options(**options))(torch.zeros([8], dtype=torch.int32), torch.zeros(8))
    assert message in str(info.value)
    assert "tl.signal(pad, [t], **options)" in str(info.value)


def test_bad_waits_and_pads_are_refused():
    def wait_release(pad):
        for t in tl.tile(pad.shape[0]):
            tl.wait(pad, [t], sem="release")

    with pytest.raises(TracingError, match="wait\\(sem='release'\\): sem is one of 'relaxed', 'acquire', 'acq_rel'"):
        tfn.interpret(wait_release)(torch.zeros([4], dtype=torch.int32))
    with pytest.raises(TracingError, match="update goes with op='atomic_cas'"):
        tfn.interpret(lambda pad: [tl.wait(pad, [t], update=2) for t in tl.tile(pad.shape[0])])(
            torch.zeros([4], dtype=torch.int32))
    with pytest.raises(TracingError, match="wait\\(\\) on a float32 tensor: a signal pad is int32 or int64"):
        tfn.interpret(wait_only)(torch.zeros([4]))


def test_the_ir_prints_each_signal_and_wait_with_its_options():
    text = str(tfn.make_ir(locked_sum)(torch.ones(8, dtype=torch.int32), torch.zeros([1], dtype=torch.int32)))
    assert "wait[op=atomic_cas, scope=gpu, sem=acquire, signal=0, update=1] lock[0]" in text
    assert "signal[op=atomic_xchg, scope=gpu, sem=release, signal=0] lock[0]" in text


def test_helion_names_are_the_same_functions():
    assert hl.signal is tl.signal and hl.wait is tl.wait


def test_the_lowering_compiles_for_sm90_with_ordered_atomics_and_barriers():
    lock = torch.zeros([1], dtype=torch.int32)
    ptx = compile_for_gpu(locked_sum, torch.ones(64, dtype=torch.int32), lock).asm["ptx"]
    assert ".target sm_90" in ptx and "atom.global.acquire.gpu.cas.b32" in ptx  # the lock's spin
    assert "atom.global.gpu.release.exch.b32" in ptx and ptx.count("bar.sync") >= 2  # its release, the syncs
    ptx = compile_for_gpu(flag_each_element, torch.randn(64), torch.zeros([64], dtype=torch.int32)).asm["ptx"]
    assert "atom.global.gpu.release.exch.b32" in ptx and "atom.global.gpu.acquire.add.u32" in ptx  # (the wait's read)
