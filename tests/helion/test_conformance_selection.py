"""tilefn.helion.conformance.selection: `-k NAME` picks the files to run from their source, before importing
them, so a file none of whose items NAME can name (one that fails to import) reports nothing; the outcomes
of the files that are run are filtered as before."""
from __future__ import annotations

import textwrap

import pytest

from tilefn.helion.conformance import runner
from tilefn.helion.conformance.outcomes import FAIL, PASS
from tilefn.helion.conformance.selection import may_match

GOOD = '''
def check(n: int) -> None:
    assert n > 0
'''
CUTE_ONLY = '''
import helion


@helion.kernel(backend="cute")
def scale(x):
    return x


def check_cute(n: int) -> None:
    scale(n)
'''
HARNESS = '''
from .engine import HARNESS


def main() -> None:
    test("zr", 8)
'''
TESTS = '''
from helion._testing import TestCase


class TestLoops(TestCase):
    def test_fixed_block(self):
        pass

    def helper(self):
        pass
'''


def checkout(root, files: dict):
    for path, text in {"examples/__init__.py": "", "test/__init__.py": "", **files}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text))
    return root


def run_examples(root, keyword):
    outcomes = runner.run_files("example", root, runner.example_files(root), timeout=60, keyword=keyword, jobs=2,
                                emit=lambda line: None)
    return sorted((o.name, o.status) for o in outcomes)


def test_a_file_whose_items_the_keyword_cannot_name_is_not_imported(tmp_path):
    root = checkout(tmp_path, {"examples/good.py": GOOD, "examples/cute_only.py": CUTE_ONLY})
    good = [("examples/good.py::check(32)", PASS), ("examples/good.py::check(40)", PASS)]
    assert run_examples(root, "good") == good
    assert run_examples(root, "check(") == [("examples/cute_only.py", FAIL)] + good  # (both may match: both import)
    assert run_examples(root, None) == [("examples/cute_only.py", FAIL)] + good
    assert run_examples(root, "check_cute") == [("examples/cute_only.py", FAIL)]


@pytest.mark.parametrize("kind, path, source, keyword, expected", [
    ("example", "examples/good.py", GOOD, "good.py::", True),  # (the label)
    ("example", "examples/good.py", GOOD, "check(40)", True),
    ("example", "examples/good.py", GOOD, "softmax", False),
    ("example", "examples/good.py", GOOD, "main()", True),  # (a file's main() run, were it without a check)
    ("example", "examples/cute_only.py", CUTE_ONLY, "scale", False),  # (a kernel's name names no item)
    ("example", "examples/linear/gla.py", HARNESS, "HARNESS.test()", True),  # (an imported harness object)
    ("example", "examples/linear/gla.py", HARNESS, "test('zr'", True),  # (a literal main() passes)
    ("example", "examples/linear/gla.py", HARNESS, "test('rr'", False),
    ("test", "test/test_loops.py", TESTS, "TestLoops::test_fixed", True),
    ("test", "test/test_loops.py", TESTS, "test_fixed_block", True),
    ("test", "test/test_loops.py", TESTS, "helper", False),
    ("test", "test/test_loops.py", TESTS, "TestViews", False),
])
def test_may_match_reads_the_names_an_item_can_have(tmp_path, kind, path, source, keyword, expected):
    root = checkout(tmp_path, {path: source})
    assert may_match(kind, root, root / path, keyword) is expected
    assert may_match(kind, root, root / path, None)


def test_a_file_that_cannot_be_read_is_left_to_the_child_to_report(tmp_path):
    root = checkout(tmp_path, {"test/test_broken.py": "def test_x(:\n"})
    assert may_match("test", root, root / "test" / "test_broken.py", "TestViews")
    assert may_match("test", root, root / "test" / "test_missing.py", "TestViews")
