"""TILEFN_LOGS / set_logs: areas at levels on stderr; the compile log says what in a signature was new."""
from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn import logs


def test_parse_areas_levels_and_all():
    assert logs.parse("tune, +compile") == {"tune": logging.INFO, "compile": logging.DEBUG}
    assert logs.parse("all") == dict.fromkeys(logs.AREAS, logging.INFO)
    assert logs.parse("") == {}
    with pytest.raises(ValueError, match="unknown area 'tunes'.*known: tune, compile"):
        logs.parse("tunes")


def test_set_logs_shows_an_area_on_stderr_and_turns_it_off(capsys):
    logger = logging.getLogger("tilefn.tune")
    logs.set_logs(tune=logging.INFO)
    try:
        logger.info("hello %d", 1)
        logger.debug("hidden")
    finally:
        logs.set_logs(tune=None)
    assert capsys.readouterr().err == "[tilefn.tune] INFO: hello 1\n"
    logger.info("after")
    assert "after" not in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown area"):
        logs.set_logs(tuning=logging.INFO)


def double(x):
    out = torch.empty_like(x)
    for t in tl.tile(out.shape):
        out[t] = x[t] * 2
    return out


def test_each_compile_is_logged_with_what_changed(caplog):
    kernel = tfn.jit(double)
    with caplog.at_level(logging.INFO, logger="tilefn.compile"):
        for x in (torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 16)):
            torch.testing.assert_close(kernel(x), x * 2)
    messages = [r.getMessage() for r in caplog.records if r.name == "tilefn.compile"]
    assert messages == ["compiling double: first call",
                        "compiling double: x: torch.float32 (4, 8) strides (8, 1) on cpu -> "
                        "torch.float32 (4, 16) strides (16, 1) on cpu"]
    assert kernel.cache_info() == (2, 2, 0)


def test_cache_info_counts_traces_compiles_and_tunings(tmp_path, monkeypatch):
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path))
    tuned = tfn.tune(double, verbose=False, use_cache=False)
    assert tuned.cache_info() == (0, 0, 0)
    x = torch.randn(8, 4)
    for _ in range(3):
        torch.testing.assert_close(tuned(x), x * 2)
    info = tuned.cache_info()
    assert (info.compiles, info.tunings) == (1, 1) and info.traces >= 1
    tuned(torch.randn(16, 4))
    assert tuned.cache_info().tunings == 2


def test_tilefn_logs_in_the_environment_at_import():
    code = ("import torch, tilefn as tfn\n"
            "from tests.test_logs import double\n"
            "tfn.jit(double)(torch.ones(4))\n")
    env = {**os.environ, "TILEFN_LOGS": "compile"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr
    assert "[tilefn.compile] INFO: compiling double: first call" in done.stderr
