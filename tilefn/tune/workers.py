"""Parallel compilation of tuning candidates in worker processes.

Workers receive generated Triton source text (never the user's function), compile it for the GPU
and leave the result in Triton's on-disk cache, so the main process then loads it in milliseconds.
A candidate whose compilation fails or outlasts the timeout is reported as failed, never fatal; a
worker still busy at the timeout is killed, with whatever it started (a hung ptxas), and replaced.
Workers are plain subprocesses (`python -m tilefn.tune.worker_main`, talking length-prefixed
pickles over their stdin and stdout), never a re-import of the tuner's `__main__`, and they die
with the tuner (see worker_main).
"""
from __future__ import annotations

import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time

from ..lower import backend
from ..settings import Settings
from .worker_main import read_frame, write_frame

_IDLE: list[_Worker] = []  # started workers waiting for a job, kept between batches
_SIZE: int | None = None  # most workers at once: read at the first batch after shutdown()
STARTUP_TIMEOUT = 120.0  # seconds a new worker may take to import torch and Triton
MODULE = "tilefn.tune.worker_main"


def _compile(job) -> None:
    """The default job: compile one candidate's generated source into Triton's disk cache."""
    backend.launch().precompile(*job)


def _command() -> list[str]:
    """How a worker starts. Only the main thread arms the parent-death signal: Linux sends it when
    the starting *thread* exits; workers started from other threads rely on their watchdog."""
    command = [sys.executable, "-m", MODULE]
    if threading.current_thread() is threading.main_thread():
        command.append("--parent-death-signal")
    return command


def _environment() -> dict:
    """The tuner's environment, with its import path: jobs' functions unpickle in the worker."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


class _Worker:
    """One worker process (`tilefn.tune.worker_main`) and the pipes it takes jobs from and answers on."""

    def __init__(self):
        self.process = subprocess.Popen(_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=_environment(), bufsize=0,
                                        start_new_session=True)
        self.jobs, self.answers = self.process.stdin.fileno(), self.process.stdout.fileno()

    def ready(self) -> bool:
        """Wait (at most STARTUP_TIMEOUT) for the worker to finish starting."""
        try:
            return (bool(select.select([self.answers], [], [], STARTUP_TIMEOUT)[0])
                    and pickle.loads(read_frame(self.answers)) == "ready")
        except (EOFError, OSError, pickle.UnpicklingError):
            return False

    def send(self, message: bytes) -> None:
        write_frame(self.jobs, message)

    def answer(self) -> bool:
        """The answer to the job sent (EOFError or OSError: the worker crashed)."""
        return pickle.loads(read_frame(self.answers)) is True

    def kill(self) -> None:
        """Kill the worker and its process group (nothing is left behind), and reap it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # its group: it leads a new session
        except OSError:  # already gone
            pass
        self.process.kill()
        self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()


def _started(count: int) -> list:
    """`count` new workers, started together, once each is ready (the ones that fail to start are dropped)."""
    new = [_Worker() for _ in range(max(count, 0))]
    ready = [worker for worker in new if worker.ready()]
    for worker in new:
        if worker not in ready:
            worker.kill()
    return ready


def compile_all(jobs: list, timeout: float, fn=_compile, on_done=None, clock=time.monotonic) -> list[bool]:
    """Compile every job (None: nothing to compile) in parallel; True where it succeeded in time.

    Each job runs as `fn(job)` in a worker (`fn`: a picklable module-level function) and has
    `timeout` seconds from when a worker takes it: a job still running then fails and its worker
    is killed; jobs queued behind it still run. A job that cannot be pickled fails at once, and so
    does one whose `fn` lives in the tuner's `__main__` (a worker never imports it). `clock`: the
    seconds deadlines are measured in (a test's own makes them deterministic).
    `on_done(index, ok)`, if given, is called in this thread once per job as soon as its outcome is
    known (the None jobs and those that cannot be sent first), so a caller can use each at once.
    """
    global _SIZE
    if _SIZE is None:
        _SIZE = Settings.from_env().compile_workers
    ok = [job is None for job in jobs]
    reported = [False] * len(jobs)

    def settle(i: int, value: bool) -> None:
        ok[i], reported[i] = value, True
        if on_done is not None:
            on_done(i, value)

    messages = {}
    for i, job in enumerate(jobs):
        try:
            if job is not None:
                messages[i] = pickle.dumps((fn, job))
        except Exception:  # a job that cannot be sent fails (and starts no worker)
            pass
    for i in range(len(jobs)):
        if i not in messages:
            settle(i, jobs[i] is None)
    queue = list(messages)
    _IDLE.extend(_started(min(_SIZE, len(queue)) - len(_IDLE)))
    busy: dict = {}  # answer pipe -> (worker, index of its job, deadline)
    try:
        while queue or busy:
            while queue and (_IDLE or len(busy) < _SIZE):
                i = queue.pop(0)
                if not _IDLE:
                    _IDLE.extend(_started(1))
                    if not _IDLE:  # workers cannot start: nothing more compiles (the rest fail)
                        queue.clear()
                        break
                worker = _IDLE.pop()
                try:
                    worker.send(messages[i])
                    busy[worker.answers] = worker, i, clock() + timeout
                except OSError:  # the worker died while idle: the job goes back to the queue
                    worker.kill()
                    queue.insert(0, i)
            if not busy:
                continue
            earliest = min(deadline for _, _, deadline in busy.values())
            for pipe in select.select(list(busy), [], [], max(0.0, earliest - clock()))[0]:
                worker, i, _ = busy.pop(pipe)
                try:
                    answer = worker.answer()
                    _IDLE.append(worker)
                except (EOFError, OSError, pickle.UnpicklingError):  # the worker crashed
                    answer = False
                    worker.kill()
                settle(i, answer)
            now = clock()
            for pipe, (worker, i, deadline) in list(busy.items()):
                if deadline <= now:  # hung: kill it (its job fails)
                    del busy[pipe]
                    worker.kill()
                    settle(i, False)
    finally:  # interrupted (Ctrl-C): no worker keeps compiling for nobody
        for worker, _, _ in busy.values():
            worker.kill()
    for i in range(len(jobs)):  # (workers could not start: the jobs left fail)
        if not reported[i]:
            settle(i, False)
    return ok


def shutdown() -> None:
    """Stop the workers (the next batch starts new ones, with the environment as it is then)."""
    global _SIZE
    while _IDLE:
        _IDLE.pop().kill()
    _SIZE = None
