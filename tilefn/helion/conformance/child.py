"""One conformance subprocess: imports one example or test file with `helion` aliased to tilefn's
and runs its items, appending to a results file `START <name>` before each item (and before the
import), `OUT <outcome json>` after it and `LOADED <file>` once the file imports, so the parent
knows which item a timeout or crash hit.

    python -m tilefn.helion.conformance.child {example,test} HELION_ROOT FILE RESULTS [--timeout S] [-k NAME]
"""
from __future__ import annotations

import argparse
import functools
import importlib
import signal
import sys
from pathlib import Path

from . import aliasing
from .examples import example_runs
from .outcomes import ItemTimeout, Outcome, PASS, from_exception
from .selection import label_of
from .unittests import module_tests, run_test


def _alarm(signum, frame):
    raise ItemTimeout("ran past its time limit")


class Results:
    """The results file, written line by line and flushed."""

    def __init__(self, path: Path):
        self.file = open(path, "a", encoding="utf-8")

    def start(self, name: str) -> None:
        self.file.write(f"START {name}\n")
        self.file.flush()

    def loaded(self, label: str) -> None:
        self.file.write(f"LOADED {label}\n")
        self.file.flush()

    def outcome(self, outcome: Outcome) -> None:
        self.file.write(f"OUT {outcome.to_json()}\n")
        self.file.flush()


def timed(fn, timeout: float):
    """Runs fn() under a SIGALRM time limit (ItemTimeout when exceeded)."""
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_item(name: str, fn, timeout: float) -> Outcome:
    """fn() under the time limit: its own Outcome (a test's), else PASS, or the error's outcome."""
    import torch

    torch.manual_seed(0)
    try:
        result = timed(fn, timeout)
    except (Exception, SystemExit) as exc:  # every failure is an outcome
        return from_exception(name, exc)
    return result if isinstance(result, Outcome) else Outcome(name, PASS)


def file_items(kind: str, module, label: str, keyword) -> list[tuple[str, object]]:
    """(name, zero-argument callable) for each example run or test of the module."""
    if kind == "example":
        return [(n, fn) for n, fn in example_runs(module, label) if keyword is None or keyword in n]
    return [(n, functools.partial(run_test, t, n)) for n, t in module_tests(module, label, keyword)]


def run_file(kind: str, root: Path, file: Path, results: Results, timeout: float, keyword) -> None:
    label = label_of(root, file)
    package = "examples" if kind == "example" else "test"
    results.start(label)
    try:
        inner = file.relative_to(root / package).with_suffix("").parts if file.is_relative_to(root / package) \
            else (file.stem,)
        module = timed(lambda: importlib.import_module(".".join((package, *inner))), timeout)
        items = file_items(kind, module, label, keyword)
    except Exception as exc:  # noqa: BLE001 - an unimportable file is one outcome
        results.outcome(from_exception(label, exc))
        return
    results.loaded(label)
    for name, fn in items:
        results.start(name)
        results.outcome(run_item(name, fn, timeout))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="tilefn.helion.conformance.child")
    parser.add_argument("kind", choices=("example", "test"))
    parser.add_argument("root", type=Path)
    parser.add_argument("file", type=Path)
    parser.add_argument("results", type=Path)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("-k", dest="keyword")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    sys.path.insert(0, str(root))
    aliasing.install(root)
    signal.signal(signal.SIGALRM, _alarm)
    run_file(args.kind, root, args.file.resolve(), Results(args.results), args.timeout, args.keyword)


if __name__ == "__main__":
    main()
