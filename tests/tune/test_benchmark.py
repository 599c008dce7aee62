"""Benchmarking candidates: failure reasons counted per kind with the first case of each kept, and the
trusted (default-config) run leaving the inputs as they were, even when it is interrupted (CPU interpreter)."""
from __future__ import annotations

import math
import sys

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.tune.benchmark import Benchmarker
from tilefn.tune.replicas import Replica
from tilefn.errors import KernelResourceError
from tilefn.lower.lowered import Lowered

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def by_block(x):
    """A result that depends on the block size: any block other than the trusted one's is 'wrong'."""
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] + (t.end - t.begin)
    return out


def test_failures_are_counted_by_reason_with_the_first_case():
    bench = Benchmarker(tfn.jit(by_block), (torch.zeros(8),), tfn.Config(block_sizes=[8]))
    hung = tfn.Config(block_sizes=[1])
    bench.broken.add(hung)  # as a worker reports a failed or hung compilation
    for config in [tfn.Config(block_sizes=[3]), tfn.Config(block_sizes=[2]), tfn.Config(block_sizes=[5]), hung,
                   tfn.Config(block_sizes=[4])]:
        assert bench(config) == math.inf
    assert math.isfinite(bench(tfn.Config(block_sizes=[8])))  # the trusted one runs and is timed
    assert bench.failures == 5
    (raised_count, raised), wrong, worker = bench.reasons.values()  # in the order first seen
    assert list(bench.reasons) == ["raised TilefnError", "gave a wrong result (vs the trusted output)",
                                   "failed or timed out compiling in a worker"]
    assert raised_count == 2 and raised.startswith("tfn.Config(block_sizes=[3]): ")
    assert raised.endswith("block size 3 (Config block_sizes[0]) must be a positive power of two")
    assert wrong == (2, "tfn.Config(block_sizes=[2])") and worker == (1, "tfn.Config(block_sizes=[1])")
    summary = bench.failure_summary()
    assert summary.startswith("2 raised TilefnError, first tfn.Config(block_sizes=[3]): ")
    assert "; 1 failed or timed out compiling in a worker, first tfn.Config(block_sizes=[1])" in summary
def increment(x):
    """Writes its input in place."""
    for t in tl.tile(x.shape):
        x[t] = x[t] + 1


@pytest.fixture
def interrupted_runs(monkeypatch):
    """Every compiled kernel writes its inputs, then raises KeyboardInterrupt (Ctrl-C); returns
    the inputs as each run left them."""
    written = []
    compile = Lowered.compile

    def interrupted(self):
        run = compile(self)

        def run_then_interrupt(*args):
            run(*args)
            written.append([a.clone() for a in args])
            raise KeyboardInterrupt

        return run_then_interrupt

    monkeypatch.setattr(Lowered, "compile", interrupted)
    return written


def test_ctrl_c_during_the_trusted_run_restores_the_inputs(interrupted_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path))
    x = torch.randn(8, 32)
    original = x.clone()
    tuned = tfn.tune(increment, effort="quick", use_cache=False, verbose=False)
    with pytest.raises(KeyboardInterrupt):
        tuned(x)
    assert len(interrupted_runs) == 1  # the trusted run, interrupted after it wrote x
    assert torch.equal(interrupted_runs[0][0], original + 1)
    assert torch.equal(x, original)


def dropped(x):
    """Draws its own random numbers (a seed from torch's generator per call)."""
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = torch.nn.functional.dropout(x[t], 0.5)
    return out


def test_kernels_drawing_their_own_seeds_are_checked_on_the_same_draws():
    x = torch.rand(300) + 1
    bench = Benchmarker(tfn.jit(dropped), (x,), tfn.Config(block_sizes=[64]))
    assert math.isfinite(bench(tfn.Config(block_sizes=[16])))  # other blocks, the same numbers
    assert bench.failures == 0
    kept = (bench.expected[0] != 0).float().mean()
    assert 0.35 < kept < 0.65


def nudged_to_float8(x, step: float):
    """x + (block - 8) * step as float8: with x on a rounding tie and a tiny step, one float8 value up at
    blocks over 8 (as a sum in another order may round)."""
    out = torch.empty(x.shape, dtype=torch.float8_e4m3fn, device=x.device)
    for t in tl.tile(x.shape[0]):
        out[t] = (x[t] + (t.block_size - 8) * step).to(torch.float8_e4m3fn)
    return out


def test_float8_results_one_rounding_step_apart_are_right_and_others_wrong():
    x = torch.full([64], 1.0625)  # halfway between float8_e4m3fn's 1.0 and 1.125
    for step, right in [(1e-6, True), (0.05, False)]:
        bench = Benchmarker(tfn.jit(nudged_to_float8), (x, step), tfn.Config(block_sizes=[8]))
        assert math.isfinite(bench(tfn.Config(block_sizes=[16]))) == right
        assert bench.failures == (0 if right else 1)


def scaled_in_place(x, out):
    """Writes `out` and doubles `x`: a run must start from restored inputs to be right."""
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * 3
        x[t] = x[t] * 2


TWO_CPUS = [torch.device("cpu"), torch.device("cpu")]  # the home device and a copy: two "devices"


@pytest.fixture
def evaluated(monkeypatch):
    """(replica, config) of every candidate run, in order."""
    seen = []
    original = Benchmarker._evaluate
    monkeypatch.setattr(Benchmarker, "_evaluate", lambda self, r, c: seen.append((r, c)) or original(self, r, c))
    return seen


def test_a_prefetched_batch_is_timed_once_per_config_over_the_devices(evaluated, monkeypatch):
    copies = []
    on = Replica.on
    monkeypatch.setattr(Replica, "on", lambda self, device: copies.append(device) or on(self, device))
    x, out = torch.randn(16), torch.zeros(16)
    original = x.clone()
    bench = Benchmarker(tfn.jit(scaled_in_place), (x, out), tfn.Config(block_sizes=[16]), devices=TWO_CPUS)
    assert bench.spread and bench.replicas[0] is bench.home and len(bench.replicas) == 2
    copy = bench.replicas[1]
    assert copy.args[0] is not x and torch.equal(copy.args[0], x) and copy.args[0].data_ptr() != x.data_ptr()
    configs = [tfn.Config(block_sizes=[b]) for b in (1, 2, 4, 8, 3)]  # (the trusted 16 ran already)
    bench.prefetch(configs)
    assert sorted(str(c) for _, c in evaluated) == sorted(str(c) for c in configs)  # each once, somewhere
    assert {id(r) for r, _ in evaluated} <= {id(bench.replicas[0]), id(bench.replicas[1])}
    timings = [(c, bench(c)) for c in configs]  # what the prefetch timed: nothing runs again
    assert len(evaluated) == len(configs)
    assert [math.isfinite(t) for _, t in timings] == [True] * 4 + [False]
    assert list(bench.reasons) == ["raised TilefnError"] and bench.failures == 1
    seconds, best = bench.settle(timings)
    home_runs = evaluated[len(configs):]
    fastest = sorted((t, str(c)) for c, t in timings if math.isfinite(t))[:3]
    assert sorted(str(c) for _, c in home_runs) == sorted(name for _, name in fastest)
    assert all(r is bench.home for r, _ in home_runs) and str(best) in {name for _, name in fastest}
    assert math.isfinite(seconds) and copies == [torch.device("cpu")]  # the arguments copied once, up front
    bench.restore()
    assert torch.equal(x, original)  # (the copies, written by timing runs, are dropped with the tuning)
    torch.testing.assert_close(bench.expected, [original * 2, original * 3])  # (no outputs: x, then out)


def test_one_device_runs_as_before(evaluated):
    x, out = torch.randn(16), torch.zeros(16)
    bench = Benchmarker(tfn.jit(scaled_in_place), (x, out), tfn.Config(block_sizes=[16]))  # CPU: home only
    assert not bench.spread and bench.replicas == [bench.home]
    configs = [tfn.Config(block_sizes=[b]) for b in (2, 4, 3)]
    bench.prefetch(configs)
    assert evaluated == []  # nothing timed ahead
    timings = [(c, bench(c)) for c in configs]
    assert [c for _, c in evaluated] == configs and all(r is bench.home for r, _ in evaluated)
    seconds, best = bench.settle(timings)
    assert (seconds, best) == min(((t, c) for c, t in timings), key=lambda p: p[0]) and len(evaluated) == 3


CAPTURED = torch.randn(16)


def adds_captured(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] + CAPTURED[t]
    return out


def test_a_kernel_reading_a_captured_tensor_is_timed_on_its_own_device():
    bench = Benchmarker(tfn.jit(adds_captured), (torch.randn(16),), tfn.Config(block_sizes=[16]), devices=TWO_CPUS)
    assert not bench.spread and bench.replicas == [bench.home]


def test_tuning_over_two_devices_finds_a_config_that_runs_right(evaluated, monkeypatch, tmp_path):
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(sys.modules["tilefn.tune.benchmark"], "tune_devices", lambda home: TWO_CPUS)
    x, out = torch.randn(64), torch.zeros(64)
    want_out, want_x = x * 3, x * 2
    tuned = tfn.tune(scaled_in_place, effort="quick", use_cache=False, verbose=False)
    tuned(x, out)
    torch.testing.assert_close(out, want_out)
    torch.testing.assert_close(x, want_x)  # one real call after tuning, from the restored inputs
    searched, retimed = [c for _, c in evaluated[:-3]], evaluated[-3:]
    assert len(searched) == len(set(searched)) > 3  # each candidate timed once, on either device
    assert len({id(r) for r, _ in evaluated}) <= 2  # the home replica and the copy, made once
    assert all(r.args[0] is x for r, _ in retimed)  # the fastest three timed again at home
    assert tuned.known_config(x, out) in [c for _, c in retimed]


def test_a_candidate_the_gpu_cannot_load_is_skipped(monkeypatch):
    """A KernelResourceError (Triton's OutOfResources at the kernel's load, on CUDA) skips the candidate and
    is counted under its own reason; the others still run."""
    compile = Lowered.compile

    def unloadable_at_4(self):
        if self.config.block_sizes[0] == 4:
            raise KernelResourceError("kernel by_block needs 300000 bytes of shared memory")
        return compile(self)

    monkeypatch.setattr(Lowered, "compile", unloadable_at_4)
    bench = Benchmarker(tfn.jit(by_block), (torch.zeros(8),), tfn.Config(block_sizes=[8]))
    assert bench(tfn.Config(block_sizes=[4])) == math.inf
    assert math.isfinite(bench(tfn.Config(block_sizes=[8])))
    ((count, first),) = bench.reasons.values()
    assert list(bench.reasons) == ["raised KernelResourceError"] and count == 1
    assert first.startswith("tfn.Config(block_sizes=[4]): ") and "300000 bytes of shared memory" in first
