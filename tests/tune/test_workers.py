"""Worker processes of the tuner: results, failures, and hung jobs killed (no GPU needed)."""
import os
import subprocess
import sys
import textwrap
import time

import pytest
from processes import alive, workers as worker_processes

from tilefn.tune import workers

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="checks processes through /proc")


def succeed(job) -> None:
    """A job that compiles."""


def fail(job) -> None:
    """A job whose compilation raises."""
    raise RuntimeError(job)


def hang(path) -> None:
    """A job that hangs, with a child process (like a hung ptxas); writes both pids to `path`."""
    child = subprocess.Popen(["sleep", "600"])
    with open(path, "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    time.sleep(600)


def call(job) -> None:
    """Run `job = (function, argument)`: one batch can mix jobs that succeed, fail and hang."""
    function, argument = job
    function(argument)


def _workers() -> list[int]:
    """This process's workers."""
    return worker_processes(os.getpid())


@pytest.fixture(autouse=True)
def two_workers(monkeypatch):
    monkeypatch.setenv("TILEFN_COMPILE_WORKERS", "2")
    workers.shutdown()
    yield
    workers.shutdown()


def test_results():
    assert workers.compile_all([None, 1, 2, 3], timeout=60, fn=succeed) == [True] * 4
    assert workers.compile_all([1, None, 2], timeout=60, fn=fail) == [False, True, False]
    assert len(_workers()) == 2
    workers.shutdown()
    assert _workers() == []


def test_each_outcome_is_reported_as_soon_as_it_is_known(tmp_path):
    """on_done(index, ok) once per job: the None and unsendable jobs at once, the hung one at its
    timeout, after the quick ones that ran beside it."""
    reported = []
    jobs = [(hang, str(tmp_path / "pids")), None, (succeed, 1), lambda: None, (fail, 2)]
    ok = workers.compile_all(jobs, timeout=3, fn=call, on_done=lambda i, result: reported.append((i, result)))
    assert ok == [False, True, True, False, False]
    assert sorted(reported) == list(enumerate(ok))  # each job once, with its result
    assert reported[:2] == [(1, True), (3, False)] and reported[-1] == (0, False)


def test_hung_job_is_killed(tmp_path):
    assert workers.compile_all([1, 2], timeout=60, fn=succeed) == [True, True]  # workers started
    path = tmp_path / "pids"
    jobs = [(hang, str(path)), (succeed, 1), (fail, 2), (succeed, 3)]  # the other worker runs 1, 2, 3
    assert workers.compile_all(jobs, timeout=2, fn=call) == [False, True, False, True]
    worker_pid, child_pid = map(int, path.read_text().split())
    assert not alive(worker_pid) and not alive(child_pid)
    assert worker_pid not in _workers()
    assert len(_workers()) == 1
    assert workers.compile_all([1, 2, 3], timeout=60, fn=succeed) == [True] * 3
    assert len(_workers()) == 2


def pause(seconds) -> None:
    """A slow but healthy compilation."""
    time.sleep(seconds)


def test_each_job_has_the_timeout_from_when_it_starts(monkeypatch, tmp_path):
    """One worker, a hang first: the jobs queued behind it still run, each with its own timeout.

    The clock stands still at 0 until the hang has started (its pids file exists), then at 100: the
    hang's deadline (0 + 1) has passed and it is killed; the pauses behind it start at 100, so theirs
    (101) never comes, however slowly the machine runs them. A deadline from the batch's start (1)
    would kill each pause at its first check, half a second before it could answer."""
    monkeypatch.setenv("TILEFN_COMPILE_WORKERS", "1")
    workers.shutdown()
    assert workers.compile_all([1], timeout=60, fn=succeed) == [True]  # the worker started
    pids = tmp_path / "pids"
    jobs = [(hang, str(pids)), (pause, 0.5), (pause, 0.5)]
    clock = lambda: 100.0 if pids.exists() and pids.read_text() else 0.0  # noqa: E731  (pids written: started)
    assert workers.compile_all(jobs, timeout=1.0, fn=call, clock=clock) == [False, True, True]
    worker_pid, child_pid = map(int, pids.read_text().split())
    assert not alive(worker_pid) and not alive(child_pid)


def test_a_batch_of_unsendable_jobs_starts_no_worker():
    assert workers.compile_all([lambda: None], timeout=30, fn=call) == [False]  # a lambda does not pickle
    assert _workers() == []


def test_a_worker_that_dies_is_replaced():
    assert workers.compile_all([1], timeout=60, fn=succeed) == [True]
    (first,) = _workers()
    assert workers.compile_all([1], timeout=60, fn=os._exit) == [False]  # the worker exits mid-job
    assert not alive(first)
    assert workers.compile_all([1, 2], timeout=60, fn=succeed) == [True, True]


def test_an_interrupted_batch_kills_its_busy_workers(monkeypatch, tmp_path):
    """Ctrl-C while jobs run: the busy worker and what it started are killed, not left compiling."""
    assert workers.compile_all([1, 2], timeout=60, fn=succeed) == [True, True]
    path = tmp_path / "pids"

    def interrupt(*args):
        while not path.exists() or not path.read_text():
            time.sleep(0.05)
        raise KeyboardInterrupt

    monkeypatch.setattr(workers.select, "select", interrupt)
    with pytest.raises(KeyboardInterrupt):
        workers.compile_all([(hang, str(path))], timeout=600, fn=call)
    worker_pid, child_pid = map(int, path.read_text().split())
    assert not alive(worker_pid) and not alive(child_pid)
    assert len(_workers()) == 1  # the idle one stays in the pool


NO_MAIN_GUARD = """
    import torch
    import tilefn as tfn
    from tilefn import lang as tl
    from tilefn.tune import workers

    print("the script's body ran", flush=True)

    def add(x, y):
        out = torch.empty_like(x)
        for t in tl.tile(out.shape):
            out[t] = x[t] + y[t]
        return out

    def from_main(job):
        pass

    x, y = torch.randn(8, 32), torch.randn(8, 32)
    tuned = tfn.tune(add, effort="quick", use_cache=False, verbose=False)
    assert torch.equal(tuned(x, y), x + y)
    print("tuned", tuned.best_config(x, y))
    print("compiled", workers.compile_all([1, -2, "x"], timeout=120, fn=abs))
    print("from __main__", workers.compile_all([1], timeout=120, fn=from_main))
"""


def test_a_script_without_a_main_guard_runs_its_body_once(tmp_path):
    """Workers are `python -m tilefn.tune.worker_main`: they never import (re-run) the tuner's script."""
    script = tmp_path / "no_guard.py"
    script.write_text(textwrap.dedent(NO_MAIN_GUARD))
    env = {**os.environ, "TILEFN_COMPILE_WORKERS": "2", "TILEFN_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.count("the script's body ran") == 1, done.stdout
    assert any(line.startswith("tuned tfn.Config(") for line in lines), done.stdout
    assert "compiled [True, True, False]" in lines
    assert "from __main__ [False]" in lines  # a job function of the script cannot reach a worker
