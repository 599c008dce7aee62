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

_CTX = multiprocessing.get_context("spawn")
_IDLE: list[_Worker] = []  # started workers waiting for a job, kept between batches
_SIZE: int | None = None  # most workers at once: read at the first batch after shutdown()


def _quiet() -> None:
    """Workers' stdout and stderr go nowhere: a failing candidate makes ptxas dump its whole PTX
    there; the failure is reported (logged) by the tuner instead."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def _compile(job) -> None:
    from tilefn.lower.launch import precompile

    precompile(*job)


def _serve(conn) -> None:
    """Worker loop: run each `(fn, job)` received as `fn(job)` and answer whether it succeeded; stop at EOF."""
    os.setpgrp()  # its own process group, so that killing it also kills the compilers it started
    _quiet()
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

    def kill(self) -> None:
        """Kill the worker and its process group (nothing is left behind), and reap it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:  # not yet in its own group, or already gone
            pass
        self.process.kill()
        self.process.join()
        self.conn.close()


def compile_all(jobs: list, timeout: float, fn=_compile) -> list[bool]:
    """Compile every job (None: nothing to compile) in parallel; True where it succeeded in time.

    Each job runs as `fn(job)` in a worker (`fn`: a picklable module-level function). Jobs wait for a
    free worker; at `timeout` seconds, the jobs still running or waiting fail and busy workers are killed.
    """
    global _SIZE
    if _SIZE is None:
        _SIZE = max(1, int(os.environ.get("TILEFN_COMPILE_WORKERS", min(8, os.cpu_count() or 1))))
    deadline = time.monotonic() + timeout
    ok = [job is None for job in jobs]
    queue = [i for i, job in enumerate(jobs) if job is not None]
    while len(_IDLE) < min(_SIZE, len(queue)):  # start them all before any waits on its start-up
        _IDLE.append(_Worker())
    busy: dict = {}  # connection -> (worker, index of its job)
    while queue or busy:
        while queue and (_IDLE or len(busy) < _SIZE):
            i = queue.pop(0)
            try:
                message = pickle.dumps((fn, jobs[i]))
            except Exception:  # a job that cannot be sent fails
                continue
            worker = _IDLE.pop() if _IDLE else _Worker()
            try:
                worker.conn.send_bytes(message)
                busy[worker.conn] = worker, i
            except OSError:  # the worker died while idle
                worker.kill()
        ready = wait(list(busy), timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        for conn in ready:
            worker, i = busy.pop(conn)
            try:
                ok[i] = conn.recv()
                _IDLE.append(worker)
            except (EOFError, OSError):  # the worker crashed
                worker.kill()
    for worker, _ in busy.values():
        worker.kill()
    return ok


def shutdown() -> None:
    """Stop the workers (the next batch starts new ones, with the environment as it is then)."""
    global _SIZE
    while _IDLE:
        _IDLE.pop().kill()
    _SIZE = None
