"""The Benchmarker's failure reasons: counted per kind, the first case of each kept (CPU interpreter)."""
from __future__ import annotations

import math

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.tune.benchmark import Benchmarker

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def by_block(x):
    """A result that depends on the block size: any block other than the trusted one's is 'wrong'."""
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] + t.count
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
