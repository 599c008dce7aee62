"""A compile worker's process: its framing, its answers, and its death with the tuner, compilers
included (real processes, checked through /proc; no GPU needed)."""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from processes import alive

from tilefn.tune import worker_main
from tilefn.tune.worker_main import read_frame, write_frame

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="checks processes through /proc")

JOBS = """
    import os, subprocess, time

    def hang(path):
        '''Hang with a child process (like a hung ptxas), after writing both pids to `path`.'''
        child = subprocess.Popen(["sleep", "600"])
        with open(path + ".part", "w") as f:
            f.write(f"{os.getpid()} {child.pid}")
        os.rename(path + ".part", path)
        time.sleep(600)
"""

TUNER = """
    import sys, threading
    import jobs
    from tilefn.tune import workers

    def batch():
        workers.compile_all([sys.argv[1]], timeout=600, fn=jobs.hang)

    if sys.argv[2] == "thread":  # a worker started from a thread has no parent-death signal
        threading.Thread(target=batch).start()
    else:
        batch()
"""


def _write(directory, name: str, text: str):
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def _pids(path, seconds: float = 180) -> tuple[int, int]:
    """The (worker, compiler) pids a hanging job wrote, once it has started."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    worker, child = map(int, path.read_text().split())
    return worker, child


def _gone(*pids: int, seconds: float = 30) -> bool:
    """Whether all of `pids` are dead (zombies included) within `seconds`."""
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_frames_round_trip_and_end_in_eof():
    read, write = os.pipe()
    for data in [b"", b"x", bytes(range(256)) * 1000]:
        pid = os.fork()
        if pid == 0:  # a writer that the reader does not wait for (the pipe holds 64 KB)
            write_frame(write, data)
            os._exit(0)
        assert read_frame(read) == data
        os.waitpid(pid, 0)
    write_frame(write, b"abc")
    os.close(write)
    assert read_frame(read) == b"abc"
    with pytest.raises(EOFError):
        read_frame(read)
    os.close(read)


def test_a_truncated_frame_is_eof():
    read, write = os.pipe()
    os.write(write, worker_main._HEADER.pack(10) + b"short")
    os.close(write)
    with pytest.raises(EOFError):
        read_frame(read)
    os.close(read)


@pytest.fixture
def worker(tmp_path):
    """A worker started by hand (no parent-death signal: only its watchdog), with `jobs` importable."""
    _write(tmp_path, "jobs.py", JOBS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    process = subprocess.Popen([sys.executable, "-m", "tilefn.tune.worker_main"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0,
                               start_new_session=True)
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _ask(process, fn, job) -> bool:
    write_frame(process.stdin.fileno(), pickle.dumps((fn, job)))
    return pickle.loads(read_frame(process.stdout.fileno()))


def test_a_worker_answers_each_job_and_stops_at_eof(worker):
    assert pickle.loads(read_frame(worker.stdout.fileno())) == "ready"
    assert _ask(worker, abs, -1) is True
    assert _ask(worker, abs, "not a number") is False
    write_frame(worker.stdin.fileno(), b"not a pickle")
    assert pickle.loads(read_frame(worker.stdout.fileno())) is False
    worker.stdin.close()
    assert worker.wait(timeout=60) is not None


def test_the_watchdog_kills_the_worker_and_its_compilers_when_the_tuner_hangs_up(worker, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    import jobs

    assert pickle.loads(read_frame(worker.stdout.fileno())) == "ready"
    path = tmp_path / "pids"
    write_frame(worker.stdin.fileno(), pickle.dumps((jobs.hang, str(path))))
    worker_pid, child_pid = _pids(path)
    assert worker_pid == worker.pid and alive(child_pid)
    worker.stdin.close()  # what the tuner's death does to the pipe (busy worker: nobody reads it)
    assert _gone(worker_pid, child_pid)


@pytest.mark.parametrize("sig, where", [(signal.SIGKILL, "main"), (signal.SIGTERM, "main"),
                                        (signal.SIGINT, "main"), (signal.SIGKILL, "thread")])
def test_workers_and_their_compilers_die_with_the_tuner(tmp_path, sig, where):
    """A real tuner script, killed while its worker runs a job that started a compiler."""
    _write(tmp_path, "jobs.py", JOBS)
    tuner = _write(tmp_path, "tuner.py", TUNER)
    path = tmp_path / "pids"
    process = subprocess.Popen([sys.executable, str(tuner), str(path), where], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        worker_pid, child_pid = _pids(path)
        assert alive(worker_pid) and alive(child_pid)
        process.send_signal(sig)
        process.wait(timeout=60)
        assert _gone(worker_pid, child_pid), f"left behind: {[p for p in (worker_pid, child_pid) if alive(p)]}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
