"""Worker processes of the tuner: results, failures, and hung jobs killed (no GPU needed)."""
import multiprocessing
import os
import subprocess
import time

import pytest

from tilefn.tune import workers


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


def _alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (an orphan may wait for a reaper)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(autouse=True)
def two_workers(monkeypatch):
    monkeypatch.setenv("TILEFN_COMPILE_WORKERS", "2")
    workers.shutdown()
    yield
    workers.shutdown()


def test_results():
    assert workers.compile_all([None, 1, 2, 3], timeout=60, fn=succeed) == [True] * 4
    assert workers.compile_all([1, None, 2], timeout=60, fn=fail) == [False, True, False]
    assert len(multiprocessing.active_children()) == 2
    workers.shutdown()
    assert multiprocessing.active_children() == []


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="checks processes through /proc")
def test_hung_job_is_killed(tmp_path):
    assert workers.compile_all([1, 2], timeout=60, fn=succeed) == [True, True]  # workers started
    path = tmp_path / "pids"
    start = time.monotonic()
    jobs = [(hang, str(path)), (succeed, 1), (fail, 2), (succeed, 3)]  # the other worker runs 1, 2, 3
    assert workers.compile_all(jobs, timeout=2, fn=call) == [False, True, False, True]
    assert time.monotonic() - start < 10
    worker_pid, child_pid = map(int, path.read_text().split())
    assert not _alive(worker_pid) and not _alive(child_pid)
    assert worker_pid not in [p.pid for p in multiprocessing.active_children()]
    assert len(multiprocessing.active_children()) == 1
    assert workers.compile_all([1, 2, 3], timeout=60, fn=succeed) == [True] * 3
    assert len(multiprocessing.active_children()) == 2



def pause(seconds) -> None:
    """A slow but healthy compilation."""
    time.sleep(seconds)


def test_each_job_has_the_timeout_from_when_it_starts(monkeypatch, tmp_path):
    """One worker, a hang first: the jobs queued behind it still run, each with its own timeout."""
    monkeypatch.setenv("TILEFN_COMPILE_WORKERS", "1")
    workers.shutdown()
    assert workers.compile_all([1], timeout=60, fn=succeed) == [True]  # the worker started
    jobs = [(hang, str(tmp_path / "pids")), (pause, 1.0), (pause, 1.0)]
    assert workers.compile_all(jobs, timeout=1.5, fn=call) == [False, True, True]


def test_a_batch_of_unsendable_jobs_returns_at_once():
    start = time.monotonic()
    assert workers.compile_all([lambda: None], timeout=30, fn=call) == [False]  # a lambda does not pickle
    assert time.monotonic() - start < 5
