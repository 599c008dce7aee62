"""tilefn.helion.conformance on a tiny fake Helion checkout written to a tmp dir: one example
passes, one computes a wrong result, one raises; a fake test file exercises the helion._testing
shim (code-text asserts as no-ops, skips, Helion internals, subtests, timeouts, crashes)."""
from __future__ import annotations

import textwrap
import types

import pytest
import torch

from tilefn.helion.conformance import __main__ as cli
from tilefn.helion.conformance import runner
from tilefn.helion.conformance.examples import example_runs, size_args
from tilefn.helion.conformance.outcomes import FAIL, PASS, SKIP, Outcome

KERNEL = '''
import torch
import helion
import helion.language as hl
from helion._testing import DEVICE, run_example


@helion.kernel(config=helion.Config(block_sizes=[16]))
def add(x, y):
    if x.dim() != 1:
        raise ValueError("add takes 1-d tensors")
    out = torch.empty_like(x)
    for t in hl.tile(x.size(0)):
        out[t] = x[t] + y[t]{extra}
    return out
'''

EXAMPLES = {
    "good.py": KERNEL.format(extra="") + '''

def check(n: int) -> None:
    run_example(add, torch.add, (torch.randn(n, device=DEVICE), torch.randn(n, device=DEVICE)))
''',
    "wrong.py": KERNEL.format(extra=" + 1") + '''

def check(n: int) -> None:
    run_example(add, torch.add, (torch.randn(n), torch.randn(n)))
''',
    "raises.py": KERNEL.format(extra="") + '''

def main() -> None:
    run_example(add, torch.add, (torch.randn(4, 4), torch.randn(4, 4)))
''',
}

TESTS = '''
import os
import time

import torch
import helion
import helion.language as hl
from helion._compiler.fake_internal import Unroller
from helion._testing import (DEVICE, RefEagerTestBase, TestCase, code_and_output, onlyBackends,
                             skipIfNotCUDA, skipIfRefEager)


@helion.kernel(autotune_effort="none")
def double(x):
    out = torch.empty_like(x)
    for t in hl.tile(x.size(0)):
        out[t] = x[t] * 2
    return out


@onlyBackends(["triton"])
class TestFake(RefEagerTestBase, TestCase):
    @skipIfRefEager("checks code")
    def test_pass(self):
        x = torch.randn(40, device=DEVICE)
        code, out = code_and_output(double, (x,), block_sizes=[16])
        torch.testing.assert_close(out, x * 2)
        self.assertExpectedJournal(code)
        self.assertIn("text Helion generates", code)
        self.assertNotIn("def", code)
        self.assertEqual(code.count("tl.load"), 99)

    def test_wrong(self):
        x = torch.randn(40)
        _, out = code_and_output(double, (x,))
        torch.testing.assert_close(out, x * 3)

    def test_subtests(self):
        for i in range(2):
            with self.subTest(i=i):
                self.assertEqual(i, 0, "second subtest fails")

    @skipIfNotCUDA()
    def test_cuda(self):
        raise AssertionError("never runs")

    def test_internal(self):
        Unroller().run()


class TestSlow(TestCase):
    def test_sleep(self):
        time.sleep(30)


class TestCrash(TestCase):
    def test_exit(self):
        os._exit(3)
'''


@pytest.fixture(scope="module")
def fake_helion(tmp_path_factory):
    root = tmp_path_factory.mktemp("helion")
    (root / "examples").mkdir()
    (root / "test").mkdir()
    for path in ("examples/__init__.py", "test/__init__.py"):
        (root / path).write_text("")
    for name, text in EXAMPLES.items():
        (root / "examples" / name).write_text(textwrap.dedent(text))
    (root / "test" / "test_fake.py").write_text(TESTS)
    return root


def test_examples_outcomes_and_rate(fake_helion):
    outcomes = runner.run_files("example", fake_helion, runner.example_files(fake_helion),
                                timeout=60, keyword=None, jobs=3, emit=lambda line: None)
    lines = sorted(o.line() for o in outcomes)
    assert lines[0] == "FAIL examples/raises.py::main() ValueError: add takes 1-d tensors"
    for i, n in ((1, 32), (2, 40)):
        assert lines[i].startswith(f"FAIL examples/wrong.py::check({n}) wrong-result: helion output 0: ")
        assert "Tensor-likes are not close" in lines[i]
    assert lines[3:] == ["PASS examples/good.py::check(32)", "PASS examples/good.py::check(40)"]
    assert runner.example_rate(outcomes) == "examples: 1/3 files pass (0 skipped); runs: 2/5 pass"


def run_fake_tests(root, keyword, timeout=60):
    return runner.run_files("test", root, runner.test_files(root, ["test_fake"]), timeout=timeout,
                            keyword=keyword, jobs=1, emit=lambda line: None)


def test_tests_outcomes_and_rate(fake_helion):
    outcomes = run_fake_tests(fake_helion, "TestFake::")
    by_name = {o.name.rsplit("::", 1)[1]: o for o in outcomes}
    assert sorted(by_name) == ["test_cuda", "test_internal", "test_pass", "test_subtests", "test_wrong"]
    assert by_name["test_pass"] == Outcome("test/test_fake.py::TestFake::test_pass", PASS)
    assert (by_name["test_wrong"].status, by_name["test_wrong"].category) == (FAIL, "assertion")
    assert "second subtest fails" in by_name["test_subtests"].message
    assert by_name["test_cuda"].line() == "SKIP test/test_fake.py::TestFake::test_cuda: CUDA-only test"
    assert by_name["test_internal"].status == SKIP
    assert by_name["test_internal"].message == "uses Helion internals (helion._compiler.fake_internal.Unroller)"
    assert runner.test_rate(outcomes) == "tests: 1/3 counted pass (33.3%) (2 skipped)"


def test_timeout_and_crash_fail_their_test(fake_helion):
    [slow] = run_fake_tests(fake_helion, "TestSlow", timeout=1)
    assert (slow.status, slow.category) == (FAIL, "timeout")
    [crash] = run_fake_tests(fake_helion, "TestCrash")
    assert crash.line() == "FAIL test/test_fake.py::TestCrash::test_exit crash: exit 3: no output"


def test_unimportable_file_is_one_failure(fake_helion):
    outcomes = runner.run_files("test", fake_helion, runner.test_files(fake_helion, ["test_missing"]),
                                timeout=10, keyword=None, jobs=1, emit=lambda line: None)
    assert [(o.name, o.status, o.category) for o in outcomes] == [("test/test_missing.py", FAIL, "import")]


def test_size_args_drives_size_parameters_only():
    def check(b: int, m: int, k: int, n: int, p: float, shape: tuple[int, ...], flag: bool = True): ...
    def other(backend: str, m: int): ...

    assert size_args(check, 32, 2) == (2, 32, 32, 32, 0.25, (32, 32))
    assert size_args(other, 32, 2) is None


def test_a_test_function_is_driven_too_with_the_shims_device():
    module = types.ModuleType("examples.sized")
    exec(textwrap.dedent("""
        def test(batch: int, m: int, n: int, k: int, device="cuda"):
            return batch, m, device
        def main():
            raise AssertionError("main runs only when no function is driven")
    """), vars(module))
    runs = example_runs(module, "examples/sized.py")
    assert [name for name, _ in runs] == ["examples/sized.py::test(2, 32, 32, 32)", "examples/sized.py::test(3, 40, 40, 40)"]
    assert runs[0][1]() == (2, 32, torch.device("cpu"))



def module_from_source(path, text):
    """A module imported from a real file (main()'s source is read back from it)."""
    import importlib.util

    path.write_text(textwrap.dedent(text))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_check_with_a_str_parameter_runs_as_main_calls_it_with_capped_sizes(tmp_path):
    """mamba2_chunk_scan's test(init: str, ...) was not driven, and its sizes must keep seqlen a multiple of
    chunk_size: each distinct call main() makes runs, ints capped at 32."""
    module = module_from_source(tmp_path / "patterns.py", """
        def test(init: str, batch: int, seqlen: int, chunk: int):
            assert seqlen % chunk == 0
            return init, batch, seqlen
        def main():
            test("zr", 8, 4096, 256)
            test("rr", 8, 4096, 256)
            test("zr", 8, 4096, 256)
            test("zr", 8, 4096, chunk=64)  # (not all literal positional: not driven)
    """)
    runs = example_runs(module, "examples/patterns.py")
    assert [name for name, _ in runs] == ["examples/patterns.py::test('zr', 8, 32, 32)",
                                          "examples/patterns.py::test('rr', 8, 32, 32)"]
    assert runs[1][1]() == ("rr", 8, 32)


def test_a_str_parameter_main_gives_no_literal_is_not_driven(tmp_path):
    module = module_from_source(tmp_path / "opaque.py", """
        def test(init: str, m: int):
            raise AssertionError("not driven")
        def main():
            return 7
    """)
    assert [name for name, _ in example_runs(module, "examples/opaque.py")] == ["examples/opaque.py::main()"]


def test_a_harness_objects_test_method_runs_and_nested_example_packages_are_found(tmp_path):
    """examples/linear's files hold a module-level harness whose .test() is the check; they import their
    package's modules relatively."""
    (tmp_path / "examples" / "linear").mkdir(parents=True)
    (tmp_path / "examples" / "__init__.py").write_text("")
    (tmp_path / "examples" / "linear" / "__init__.py").write_text("")
    (tmp_path / "examples" / "linear" / "engine.py").write_text("CALLS = []\n")
    (tmp_path / "examples" / "linear" / "example_gla.py").write_text(textwrap.dedent("""
        from .engine import CALLS
        class Harness:
            def test(self):
                CALLS.append(1)
                assert len(CALLS) == 1
        HARNESS = Harness()
        def main():
            raise AssertionError("main runs only when nothing else is driven")
    """))
    files = runner.example_files(tmp_path)
    assert files == [tmp_path / "examples" / "linear" / "example_gla.py"]
    outcomes = runner.run_files("example", tmp_path, files, timeout=60, keyword=None, jobs=1, emit=lambda line: None)
    assert [o.line() for o in outcomes] == ["PASS examples/linear/example_gla.py::HARNESS.test()"]


def test_failure_causes_group_across_sites():
    outcomes = [Outcome("a", FAIL, "ShapeError", "/x/a.py:3: bad shape"),
                Outcome("b", FAIL, "ShapeError", "/x/b.py:9: bad shape"),
                Outcome("c", FAIL, "timeout", "slow"), Outcome("d", PASS)]
    assert runner.failure_causes(outcomes) == ["      2  ShapeError", "            2 x bad shape",
                                               "      1  timeout", "            1 x slow"]


def test_cli_defaults():
    args = cli.parse_args(["/h", "--tests"])
    assert (args.examples, args.tests) == (False, list(runner.DEFAULT_TESTS))
    args = cli.parse_args(["/h"])
    assert args.examples and args.tests == list(runner.DEFAULT_TESTS)
    assert len(runner.DEFAULT_TESTS) == 15


def test_timeout_reraised_by_the_interpreter_is_a_timeout():
    from tilefn.helion.conformance.outcomes import ItemTimeout, category

    wrapped = RuntimeError(repr(ItemTimeout("ran past its time limit")))
    assert category(ItemTimeout("x")) == category(wrapped) == "timeout"
    assert category(RuntimeError("ItemTimeout is a word here")) == "RuntimeError"
