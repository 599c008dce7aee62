"""TuningProgress: a rich bar on a terminal, plain lines elsewhere, the Config to paste on its own line."""
from __future__ import annotations

import io

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.config import Config
from tilefn.tune import progress
from tilefn.tune.progress import TuningProgress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Evaluator:
    """A stand-in benchmarker: config -> its block size in seconds (so the smallest block is best)."""

    def prefetch(self, configs):
        pass

    def __call__(self, config):
        return config.block_sizes[0] * 1e-3


CONFIGS = [Config(block_sizes=[b]) for b in (8, 2, 4)]


def _run(stream, verbose=True):
    shown = TuningProgress(_Evaluator(), "add", len(CONFIGS), verbose, stream=stream)
    times = [shown(c) for c in CONFIGS]
    shown.close("tilefn.tune: add: 3 configs; its Config:", CONFIGS[1])
    return shown, times


def test_counts_and_keeps_the_best_time():
    shown, times = _run(io.StringIO(), verbose=False)
    assert times == [8e-3, 2e-3, 4e-3] and shown.count == 3 and shown.best == 2e-3


def test_a_terminal_gets_a_live_bar_and_then_the_config_on_a_line_of_its_own():
    stream = _Terminal()
    _run(stream)
    text = stream.getvalue()
    assert "tuning add" in text  # the live bar drew
    last = text.rstrip("\n").splitlines()[-1].strip()
    assert eval(last, {"tfn": tfn}) == CONFIGS[1]  # pastes back into the same Config
    assert "tilefn.tune: add: 3 configs" in text


def test_a_plain_stream_gets_periodic_lines_and_no_bar(monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    stream = io.StringIO()
    _run(stream)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()  # no terminal control codes
    assert [line for line in lines if "configs, best" in line] == [
        "tilefn.tune: add: 1/3 configs, best 8.000 ms", "tilefn.tune: add: 2/3 configs, best 2.000 ms",
        "tilefn.tune: add: 3/3 configs, best 2.000 ms"]
    assert eval(lines[-1].strip(), {"tfn": tfn}) == CONFIGS[1]


def test_quiet_prints_nothing():
    stream = _Terminal()
    _run(stream, verbose=False)
    assert stream.getvalue() == ""


def _add(x, y):
    out = torch.empty_like(x)
    for t in tl.tile(out.shape):
        out[t] = x[t] + y[t]
    return out


def test_tune_ends_with_the_winning_config_on_its_own_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path))
    x, y = torch.randn(8, 8), torch.randn(8, 8)
    tuned = tfn.tune(_add, use_cache=False)
    torch.testing.assert_close(tuned(x, y), x + y)
    last = capsys.readouterr().err.rstrip("\n").splitlines()[-1].strip()
    assert eval(last, {"tfn": tfn}) == tuned.best_config(x, y)


@pytest.mark.parametrize("interrupted", [KeyboardInterrupt, RuntimeError])
def test_the_bar_stops_when_the_search_is_interrupted(interrupted):
    class Failing(_Evaluator):
        def __call__(self, config):
            raise interrupted

    shown = TuningProgress(Failing(), "add", 3, True, stream=_Terminal())
    with pytest.raises(interrupted):
        try:
            shown(CONFIGS[0])
        finally:
            shown.close()
    assert shown._bar is None


def test_the_time_limit_counts_from_the_start_on_the_given_clock():
    now = [100.0]
    shown = TuningProgress(_Evaluator(), "add", 3, False, seconds=25.0, clock=lambda: now[0])
    assert not shown.out_of_time()
    now[0] = 124.9
    assert not shown.out_of_time()
    now[0] = 125.0
    assert shown.out_of_time()
    assert not TuningProgress(_Evaluator(), "add", 3, False, clock=lambda: now[0] + 1e9).out_of_time()
    assert TuningProgress(_Evaluator(), "add", 3, False, seconds=25.0, clock=lambda: now[0], started=99.0).out_of_time()


class _SlowEvaluator(_Evaluator):
    """Each evaluation takes 4 s of the test's clock."""

    def __init__(self, now):
        self.now = now

    def __call__(self, config):
        self.now[0] += 4.0
        return super().__call__(config)


def test_the_time_limit_stops_before_an_evaluation_as_long_as_the_average_would_pass_it():
    now = [0.0]
    shown = TuningProgress(_SlowEvaluator(now), "add", 10, False, seconds=25.0, clock=lambda: now[0])
    evaluated = 0
    while not shown.out_of_time():
        shown(Config(block_sizes=[16]))
        evaluated += 1
    assert evaluated == 6 and now[0] == 24.0  # a 7th would end at 28 s
    assert shown.elapsed() == 24.0
