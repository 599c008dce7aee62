"""Benchmarking candidates: the trusted (default-config) run leaves the inputs as they were, even
when it is interrupted."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.lower.lowered import Lowered

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


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
