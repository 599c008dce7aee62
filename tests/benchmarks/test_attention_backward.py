"""benchmarks/attention_backward.py imports and runs its tilefn side on CPU (`--cpu`: Triton's interpreter),
checking the derived gradients against SDPA's (its own check exits non-zero on a mismatch)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "attention_backward.py"


def _script():
    spec = importlib.util.spec_from_file_location("attention_backward", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("flags", [[], ["--causal", "--config", "Config(block_sizes=[1, 16, 16])"]],
                         ids=["full", "causal"])
def test_the_cpu_run_matches_sdpa(flags, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--cpu", *flags])
    _script().main()
    assert "tilefn's gradients match SDPA's" in capsys.readouterr().out
