"""Options for the whole suite: `--fuzz-long=N` runs N drawn programs in tests/test_fuzz.py."""
from __future__ import annotations


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", type=int, default=0, metavar="N",
                     help="tests/test_fuzz.py: also run N random tile programs (0: only the bounded CI set)")
