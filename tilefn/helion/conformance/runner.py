"""Runs each example / test file in its own subprocess (`child.py`) and summarises the outcomes.

A child that writes no result for `timeout + GRACE_S` seconds is killed: the item it was on is a
timeout. A child that dies fails the item it was on as a crash (its last stderr line says why).
"""
from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import tilefn

from .outcomes import FAIL, PASS, SKIP, Outcome
from .selection import may_match

DEFAULT_TESTS = ("test_loops", "test_reductions", "test_indexing", "test_views", "test_masking",
                 "test_control_flow", "test_broadcasting", "test_closures", "test_constexpr",
                 "test_matmul", "test_dot", "test_atomic_ops", "test_register_tunable", "test_errors",
                 "test_misc")
GRACE_S = 30.0
CHILD_ENV = {"HELION_AUTOTUNE_EFFORT": "none", "OMP_NUM_THREADS": "1"}


def example_files(root: Path) -> list[Path]:
    """examples/*.py and the example_*.py of its subpackages (examples/linear)."""
    top = (p for p in (root / "examples").glob("*.py") if p.name != "__init__.py")
    nested = (p for p in (root / "examples").glob("*/example_*.py") if (p.parent / "__init__.py").exists())
    return sorted([*top, *nested])


def test_files(root: Path, names) -> list[Path]:
    return [root / "test" / (n if n.endswith(".py") else f"{n}.py") for n in names]


def parse_results(text: str) -> tuple[list[Outcome], str | None]:
    """The outcomes in a results file and the item started but not finished (None if none)."""
    outcomes, pending = [], None
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "START":
            pending = rest
        elif kind == "OUT":
            outcomes.append(Outcome.from_json(rest))
            pending = None
        elif kind == "LOADED":
            pending = None
    return outcomes, pending


def _child_env() -> dict:
    env = {**os.environ, **CHILD_ENV}
    source_root = str(Path(tilefn.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
    return env


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def run_child(kind: str, root: Path, file: Path, timeout: float, keyword: str | None) -> list[Outcome]:
    """Runs one file's items in a subprocess; returns their outcomes."""
    with tempfile.TemporaryDirectory(prefix="tilefn-conformance-") as tmp:
        results, log = Path(tmp) / "results", Path(tmp) / "log"
        results.touch()
        cmd = [sys.executable, "-m", "tilefn.helion.conformance.child", kind, str(root), str(file),
               str(results), "--timeout", str(timeout)] + (["-k", keyword] if keyword else [])
        with open(log, "w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_child_env(),
                                    start_new_session=True)
            killed = _watch(proc, results, timeout + GRACE_S)
        outcomes, pending = parse_results(results.read_text())
        if pending is not None:
            if killed:
                outcomes.append(Outcome(pending, FAIL, "timeout", f"killed after {timeout + GRACE_S:.0f}s without a result"))
            else:
                outcomes.append(Outcome(pending, FAIL, "crash", f"exit {proc.returncode}: {_last_line(log)}"))
        return outcomes


def _watch(proc: subprocess.Popen, results: Path, idle_limit: float) -> bool:
    """Waits for the child, killing its process group when the results file stays unchanged for
    `idle_limit` seconds; True when it was killed."""
    last_size, last_change = -1, time.monotonic()
    while proc.poll() is None:
        size = results.stat().st_size
        if size != last_size:
            last_size, last_change = size, time.monotonic()
        elif time.monotonic() - last_change > idle_limit:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.2)
    return False


def run_files(kind: str, root: Path, files, timeout: float, keyword, jobs: int, emit=print) -> list[Outcome]:
    """All files' outcomes; each file's lines are emitted as soon as it finishes. A file no item of which
    `keyword` can name is not run (`selection.may_match`: read, not imported)."""
    files = [f for f in files if may_match(kind, root, f, keyword)]

    def one(file):
        outcomes = run_child(kind, root, file, timeout, keyword)
        for outcome in outcomes:
            emit(outcome.line())
        return outcomes

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return [o for outcomes in pool.map(one, files) for o in outcomes]


def file_of(name: str) -> str:
    return name.split("::", 1)[0]


def example_rate(outcomes) -> str:
    """Example files passing (every run passes) of those not wholly skipped, and runs passing."""
    by_file = collections.defaultdict(list)
    for o in outcomes:
        by_file[file_of(o.name)].append(o.status)
    counted = {f: s for f, s in by_file.items() if any(x != SKIP for x in s)}
    files_ok = sum(all(x != FAIL for x in s) and PASS in s for s in counted.values())
    runs = [o for o in outcomes if o.status != SKIP]
    runs_ok = sum(o.status == PASS for o in runs)
    skipped = len(by_file) - len(counted)
    return (f"examples: {files_ok}/{len(counted)} files pass ({skipped} skipped); "
            f"runs: {runs_ok}/{len(runs)} pass")


def test_rate(outcomes) -> str:
    counted = [o for o in outcomes if o.status != SKIP]
    passed = sum(o.status == PASS for o in counted)
    skipped = len(outcomes) - len(counted)
    percent = f" ({100 * passed / len(counted):.1f}%)" if counted else ""
    return f"tests: {passed}/{len(counted)} counted pass{percent} ({skipped} skipped)"


def cause(message: str) -> str:
    """A failure message without its leading `file.py:LINE:` and object addresses (so one cause
    groups across sites)."""
    message = re.sub(r"^\S+\.py:\d+:\s*", "", message)
    return re.sub(r" at 0x[0-9a-f]+", "", message)[:120]


def failure_causes(outcomes, top: int = 3) -> list[str]:
    """FAIL categories by count, each with its most frequent causes."""
    failed = [o for o in outcomes if o.status == FAIL]
    lines = []
    for cat, count in collections.Counter(o.category for o in failed).most_common():
        lines.append(f"  {count:5d}  {cat}")
        messages = collections.Counter(cause(o.message) for o in failed if o.category == cat)
        lines.extend(f"         {n:4d} x {m}" for m, n in messages.most_common(top))
    return lines


def summary(example_outcomes, test_outcomes) -> list[str]:
    lines = ["", "== summary =="]
    for rate, outcomes in ((example_rate, example_outcomes), (test_rate, test_outcomes)):
        if outcomes:
            lines.append(rate(outcomes))
            lines.extend(failure_causes(outcomes))
    return lines
