"""Parallel compilation of tuning candidates in worker processes.

Workers receive generated Triton source text (never the user's function), compile it for the GPU
and leave the result in Triton's on-disk cache, so the main process then loads it in milliseconds.
A candidate whose compilation fails or outlasts the timeout is reported as failed, never fatal.
"""
from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os

_POOL = None


def _pool() -> futures.ProcessPoolExecutor:
    global _POOL
    if _POOL is None:
        workers = int(os.environ.get("TILEFN_COMPILE_WORKERS", min(8, os.cpu_count() or 1)))
        _POOL = futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_quiet)
    return _POOL


def _quiet() -> None:
    """Workers' stderr goes nowhere: a failing candidate makes ptxas dump its whole PTX there; the
    failure is reported (logged) by the tuner instead."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)


def _compile(job) -> None:
    from tilefn.lower.launch import precompile

    precompile(*job)


def compile_all(jobs: list, timeout: float) -> list[bool]:
    """Compile every job (None: nothing to compile) in parallel; True where it succeeded in time."""
    pending = {i: _pool().submit(_compile, job) for i, job in enumerate(jobs) if job is not None}
    done, _ = futures.wait(pending.values(), timeout=timeout)
    ok = []
    for i, job in enumerate(jobs):
        future = pending.get(i)
        ok.append(job is None or (future in done and future.exception() is None))
        if future is not None and future not in done:
            future.cancel()
    return ok


def shutdown() -> None:
    """Stop the workers (the next batch starts new ones, with the environment as it is then)."""
    global _POOL
    if _POOL is not None:
        _POOL.shutdown(cancel_futures=True)
        _POOL = None
