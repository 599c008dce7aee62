"""Parallel compilation of tuning candidates in worker processes.

Workers receive generated Triton source text (never the user's function), compile it for the GPU
and leave the result in Triton's on-disk cache, so the main process then loads it in milliseconds.
A candidate whose compilation fails or outlasts the timeout is reported as failed, never fatal; a
worker still busy at the timeout is killed, with whatever it started (a hung ptxas), and replaced.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import time
from multiprocessing.connection import wait

from ..lower import backend
from ..settings import Settings

_CTX = multiprocessing.get_context("spawn")
_IDLE: list[_Worker] = []  # started workers waiting for a job, kept between batches
_SIZE: int | None = None  # most workers at once: read at the first batch after shutdown()
STARTUP_TIMEOUT = 120.0  # seconds a new worker may take to import torch and Triton


def _quiet() -> None:
    """Workers' stdout and stderr go nowhere: a failing candidate makes ptxas dump its whole PTX
    there; the failure is reported (logged) by the tuner instead."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def _compile(job) -> None:
    """The default job: compile one candidate's generated source into Triton's disk cache."""
    backend.launch().precompile(*job)


def _serve(conn) -> None:
    """Worker loop: say "ready" once torch and Triton are imported, then run each `(fn, job)` received
    as `fn(job)` and answer whether it succeeded; stop at EOF."""
    os.setpgrp()  # its own process group, so that killing it also kills the compilers it started
    _quiet()
    backend.launch()  # (start-up is not any job's time)

    conn.send("ready")
    while True:
        try:
            message = conn.recv_bytes()
        except EOFError:
            return
        try:
            fn, job = pickle.loads(message)
            fn(job)
            ok = True
        except Exception:
            ok = False
        conn.send(ok)


class _Worker:
    """One spawned worker process and the pipe it takes jobs from and answers on."""

    def __init__(self):
        self.conn, child = _CTX.Pipe()
        self.process = _CTX.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def ready(self) -> bool:
        """Wait (at most STARTUP_TIMEOUT) for the worker to finish starting."""
        try:
            return self.conn.poll(STARTUP_TIMEOUT) and self.conn.recv() == "ready"
        except (EOFError, OSError):
            return False

    def kill(self) -> None:
        """Kill the worker and its process group (nothing is left behind), and reap it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:  # not yet in its own group, or already gone
            pass
        self.process.kill()
        self.process.join()
        self.conn.close()


def _started(count: int) -> list:
    """`count` new workers, started together, once each is ready (the ones that fail to start are dropped)."""
    new = [_Worker() for _ in range(max(count, 0))]
    ready = [worker for worker in new if worker.ready()]
    for worker in new:
        if worker not in ready:
            worker.kill()
    return ready


def compile_all(jobs: list, timeout: float, fn=_compile) -> list[bool]:
    """Compile every job (None: nothing to compile) in parallel; True where it succeeded in time.

    Each job runs as `fn(job)` in a worker (`fn`: a picklable module-level function) and has
    `timeout` seconds from when a worker takes it: a job still running then fails and its worker
    is killed; jobs queued behind it still run. A job that cannot be pickled fails at once.
    """
    global _SIZE
    if _SIZE is None:
        _SIZE = Settings.from_env().compile_workers
    ok = [job is None for job in jobs]
    messages = {}
    for i, job in enumerate(jobs):
        try:
            if job is not None:
                messages[i] = pickle.dumps((fn, job))
        except Exception:  # a job that cannot be sent fails (and starts no worker)
            pass
    queue = list(messages)
    _IDLE.extend(_started(min(_SIZE, len(queue)) - len(_IDLE)))
    busy: dict = {}  # connection -> (worker, index of its job, deadline)
    while queue or busy:
        while queue and (_IDLE or len(busy) < _SIZE):
            i = queue.pop(0)
            if not _IDLE:
                _IDLE.extend(_started(1))
                if not _IDLE:  # workers cannot start: nothing compiles
                    return ok
            worker = _IDLE.pop()
            try:
                worker.conn.send_bytes(messages[i])
                busy[worker.conn] = worker, i, time.monotonic() + timeout
            except OSError:  # the worker died while idle: the job goes back to the queue
                worker.kill()
                queue.insert(0, i)
        if not busy:
            continue
        earliest = min(deadline for _, _, deadline in busy.values())
        for conn in wait(list(busy), timeout=max(0.0, earliest - time.monotonic())):
            worker, i, _ = busy.pop(conn)
            try:
                ok[i] = conn.recv()
                _IDLE.append(worker)
            except (EOFError, OSError):  # the worker crashed
                worker.kill()
        now = time.monotonic()
        for conn, (worker, _, deadline) in list(busy.items()):
            if deadline <= now:  # hung: kill it (its job stays failed)
                del busy[conn]
                worker.kill()
    return ok


def shutdown() -> None:
    """Stop the workers (the next batch starts new ones, with the environment as it is then)."""
    global _SIZE
    while _IDLE:
        _IDLE.pop().kill()
    _SIZE = None
