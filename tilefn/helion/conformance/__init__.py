"""Runs Helion's own examples and test files against `tilefn.helion` and reports pass rates.

    python -m tilefn.helion.conformance PATH_TO_HELION [--examples] [--tests FILES] [-k NAME] [--timeout S]

Each file runs in its own subprocess (`child.py`) with `helion` aliased to tilefn's
(`aliasing.py`) and `helion._testing` replaced by `testing_shim.py`; `runner.py` collects one
outcome per kernel check or test method (`outcomes.py`) and prints the summary.
"""
