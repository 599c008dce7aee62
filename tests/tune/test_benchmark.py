"""Benchmarking candidates: failure reasons counted per kind with the first case of each kept, and the
trusted (default-config) run leaving the inputs as they were, even when it is interrupted (CPU interpreter)."""
from __future__ import annotations

import math

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.tune.benchmark import Benchmarker
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
