"""tilefn.helion tests: no HELION_* variables from the caller's environment, a private tune cache."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_helion_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("HELION_") or name == "TRITON_F32_DEFAULT":
            monkeypatch.delenv(name)
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path / "tilefn-cache"))
