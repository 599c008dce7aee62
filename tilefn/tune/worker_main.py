"""A compile worker's process: `python -m tilefn.tune.worker_main [--parent-death-signal]`.

Started by `tilefn.tune.workers` as a plain subprocess, so it never imports (or re-runs) the
tuner's `__main__`. It reads length-prefixed pickles `(fn, job)` from stdin, runs `fn(job)` and
answers whether it succeeded on stdout ("ready" first, once torch and Triton are imported); it
stops at EOF. It leads its own process group (the tuner starts it in a new session), so that it
dies together with the compilers it started (a hung ptxas):

- `--parent-death-signal` (Linux; given when the tuner's main thread starts it): the kernel sends
  SIGTERM when the tuner dies, and the handler kills the whole group with SIGKILL. (Not SIGKILL
  itself: a worker killed outright could not take its compilers along.)
- a watchdog thread kills the group when the tuner's end of stdin closes or the parent changes:
  other systems, workers started from a thread that may exit, and a signal that went astray.
"""
from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import sys
import threading

from ..lower import backend

_HEADER = struct.Struct("<Q")  # the length of the pickle that follows
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_INTERVAL = 1.0  # seconds between the watchdog's checks that the parent lives


def write_frame(fd: int, data: bytes) -> None:
    """Write one frame (length, then bytes) to `fd`."""
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            raise EOFError("the other end closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> bytes:
    """Read one frame's bytes from `fd`; EOFError at the end of the stream."""
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    return _read_exactly(fd, size)


def _kill_group(*_) -> None:
    """Kill this worker's process group: itself and every compiler it started."""
    os.killpg(0, signal.SIGKILL)


def _watch(fd: int, parent: int) -> None:
    """Kill the group once `fd` (the tuner's pipe) hangs up or the parent process is no longer `parent`."""
    poller = select.poll()
    poller.register(fd, 0)  # no events asked for: poll reports only a hang-up or an error
    while not poller.poll(WATCH_INTERVAL * 1000) and os.getppid() == parent:
        pass
    _kill_group()


def _set_parent_death_signal() -> None:
    """Have Linux send SIGTERM to this process when the thread that started it exits."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def _private_pipes() -> tuple[int, int]:
    """Move the job pipes (stdin, stdout) to fresh descriptors that compilers do not inherit, and
    point 0, 1 and 2 at /dev/null: a failing candidate makes ptxas dump its whole PTX there."""
    jobs, answers = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    return jobs, answers


def serve(jobs: int, answers: int) -> None:
    """Say "ready" once torch and Triton are imported, then answer each `(fn, job)` with whether
    `fn(job)` returned; stop at EOF."""
    backend.launch()  # (start-up is not any job's time)
    write_frame(answers, pickle.dumps("ready"))
    while True:
        try:
            message = read_frame(jobs)
        except EOFError:
            return
        try:
            fn, job = pickle.loads(message)
            fn(job)
            ok = True
        except Exception:
            ok = False
        write_frame(answers, pickle.dumps(ok))


def main(argv: list[str]) -> None:
    if os.getpid() != os.getpgrp():
        os.setpgrp()  # (the tuner starts a new session; a worker started by hand gets its group here)
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _kill_group)
    if "--parent-death-signal" in argv and sys.platform.startswith("linux"):
        _set_parent_death_signal()
        if os.getppid() != parent:  # the parent died before the signal was armed
            _kill_group()
    jobs, answers = _private_pipes()
    threading.Thread(target=_watch, args=(jobs, parent), daemon=True, name="tilefn-watchdog").start()
    serve(jobs, answers)


if __name__ == "__main__":
    main(sys.argv[1:])
