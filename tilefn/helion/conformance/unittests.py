"""Runs a test module's unittest tests one by one, reporting an Outcome per test method.

A test passes when it and all its subtests pass; the first failing subtest's error is the test's.
Expected failures count as skips (Helion marks them; they measure nothing here).
"""
from __future__ import annotations

import unittest

from .outcomes import FAIL, PASS, SKIP, Outcome, from_exception


def iter_tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iter_tests(item)
        else:
            yield item


class Recorder(unittest.TestResult):
    """Keeps the first error of a test (or of its subtests) as an Outcome."""

    def __init__(self, name: str):
        super().__init__()
        self.name, self.outcome = name, Outcome(name, PASS)

    def _fail(self, err) -> None:
        if self.outcome.status == PASS:
            self.outcome = from_exception(self.name, err[1])

    def addError(self, test, err):
        self._fail(err)

    addFailure = addError

    def addSubTest(self, test, subtest, err):
        if err is not None:
            self._fail(err)

    def addSkip(self, test, reason):
        self.outcome = Outcome(self.name, SKIP, message=reason or "skipped")

    def addExpectedFailure(self, test, err):
        self.outcome = Outcome(self.name, SKIP, message="expected failure")

    def addUnexpectedSuccess(self, test):
        self.outcome = Outcome(self.name, FAIL, "unexpected-success", "marked expected to fail, passed")


def test_name(label: str, test: unittest.TestCase) -> str:
    cls = type(test)
    return f"{label}::{cls.__name__}::{test._testMethodName}"


def run_test(test: unittest.TestCase, name: str) -> Outcome:
    recorder = Recorder(name)
    unittest.TestSuite([test]).run(recorder)  # a suite runs the class's setUpClass/tearDownClass
    return recorder.outcome


def module_tests(module, label: str, keyword: str | None) -> list[tuple[str, unittest.TestCase]]:
    """(name, test) for each test of the module whose name contains `keyword` (all if None)."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    tests = [(test_name(label, t), t) for t in iter_tests(suite)]
    return [(n, t) for n, t in tests if keyword is None or keyword in n]
