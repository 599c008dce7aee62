"""Process checks through /proc for the worker tests: which processes live, which are workers."""
from __future__ import annotations

import os

WORKER_MODULE = b"tilefn.tune.worker_main"


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, parent pid, ...)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (an orphan may wait for a reaper)."""
    try:
        return _stat(pid)[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def workers(parent: int | None = None) -> list[int]:
    """The live worker processes (`python -m tilefn.tune.worker_main`), only `parent`'s if given."""
    pids = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().split(b"\0")
            fields = _stat(int(entry))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if WORKER_MODULE in command and fields[0] != "Z" and parent in (None, int(fields[1])):
            pids.append(int(entry))
    return pids
