"""tilefn's Settings: TILEFN_* variables read when settings are made, overrides on top."""
from pathlib import Path

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.settings import Settings

VARIABLES = ("TILEFN_PRINT_OUTPUT_CODE", "TILEFN_DUMP_PASSES", "TILEFN_CACHE_DIR", "TILEFN_COMPILE_WORKERS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def double(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * 2
    return out


def test_defaults_without_variables():
    s = Settings.from_env()
    assert not s.print_output_code and not s.dump_passes
    assert s.cache_dir == Path.home() / ".cache" / "tilefn" and s.compile_workers >= 1


def test_variables_are_read_when_settings_are_made(monkeypatch, tmp_path):
    before = Settings.from_env()
    monkeypatch.setenv("TILEFN_PRINT_OUTPUT_CODE", "1")
    monkeypatch.setenv("TILEFN_DUMP_PASSES", "1")
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TILEFN_COMPILE_WORKERS", "3")
    assert not before.print_output_code
    assert Settings.from_env() == Settings(print_output_code=True, dump_passes=True, cache_dir=tmp_path,
                                           compile_workers=3)
    monkeypatch.setenv("TILEFN_PRINT_OUTPUT_CODE", "0")
    assert not Settings.from_env().print_output_code


def test_overrides_win_over_variables_and_none_means_not_given(monkeypatch):
    monkeypatch.setenv("TILEFN_PRINT_OUTPUT_CODE", "1")
    assert not Settings.from_env(print_output_code=False).print_output_code
    assert Settings.from_env(print_output_code=None).print_output_code
    with pytest.raises(TypeError, match="no fields"):
        Settings.from_env(verbose=True)


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings().dump_passes = True


def test_jit_argument_overrides_the_variable(monkeypatch, capfd):
    monkeypatch.setenv("TILEFN_PRINT_OUTPUT_CODE", "1")
    tfn.jit(double, print_output_code=False)(torch.randn(8))
    assert "def _double_kernel(" not in capfd.readouterr().err
    tfn.jit(double)(torch.randn(8))
    assert capfd.readouterr().err.count("def _double_kernel(") == 1


def test_dump_passes_prints_the_program_after_each_pass(monkeypatch, capfd):
    tfn.jit(double).lower(torch.randn(8))
    assert "--- after" not in capfd.readouterr().err
    monkeypatch.setenv("TILEFN_DUMP_PASSES", "1")
    tfn.jit(double).lower(torch.randn(8))
    err = capfd.readouterr().err
    assert "--- after reduction_loops ---" in err and "--- after dce ---" in err


def times_settings_test(x):
    """A kernel no other test compiles (a source is written once per process)."""
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * 7.25
    return out


def test_generated_sources_go_under_the_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path))
    x = torch.randn(8)
    torch.testing.assert_close(tfn.jit(times_settings_test)(x), x * 7.25)
    assert any((tmp_path / "src").glob("*.py"))
