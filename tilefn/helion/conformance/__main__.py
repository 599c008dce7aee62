"""`python -m tilefn.helion.conformance PATH_TO_HELION [--examples] [--tests FILES] [-k NAME] [--timeout S]`

Without --examples or --tests both run; --tests alone (no names) runs runner.DEFAULT_TESTS.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from . import runner


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tilefn.helion.conformance",
                                     description="Run Helion's examples and tests against tilefn.helion.")
    parser.add_argument("helion", type=Path, help="a Helion checkout (with examples/ and test/)")
    parser.add_argument("--examples", action="store_true", help="run the example files")
    parser.add_argument("--tests", nargs="*", metavar="FILE", default=None,
                        help=f"test files to run (default: {' '.join(runner.DEFAULT_TESTS)})")
    parser.add_argument("-k", dest="keyword", help="only items whose name contains this (files none of whose items can are not imported)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per example run or test")
    parser.add_argument("--jobs", type=int, default=1, help="files run at once")
    args = parser.parse_args(argv)
    if not args.examples and args.tests is None:
        args.examples, args.tests = True, []
    if args.tests == []:
        args.tests = list(runner.DEFAULT_TESTS)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    root = args.helion.resolve()
    run = dict(timeout=args.timeout, keyword=args.keyword, jobs=args.jobs, emit=lambda line: print(line, flush=True))
    examples = runner.run_files("example", root, runner.example_files(root), **run) if args.examples else []
    tests = runner.run_files("test", root, runner.test_files(root, args.tests), **run) if args.tests else []
    for line in runner.summary(examples, tests):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
