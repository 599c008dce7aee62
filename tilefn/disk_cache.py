"""Files of tilefn's on-disk caches (generated sources, tuned configs) under one root directory.

Reads and writes never fail a caller: a root that cannot be read or written (read-only, or a path
under a regular file) makes `read` answer None and `write` answer False, with one warning per root
per process, so tilefn goes on without the cache.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from pathlib import Path

log = logging.getLogger("tilefn.cache")
_WARNED: set[Path] = set()  # roots warned about in this process
_LOCK = threading.Lock()


def read(root: Path, relative: str) -> str | None:
    """The text of `root / relative`; None if it is missing or cannot be read."""
    try:
        return (root / relative).read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        _unusable(root, exc)
        return None


def write(root: Path, relative: str, text: str) -> bool:
    """Write `text` to `root / relative` atomically (a temporary file, then os.replace); whether it worked."""
    path = root / relative
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        _unusable(root, exc)
        return False
    return True


def _unusable(root: Path, exc: OSError) -> None:
    with _LOCK:
        if root in _WARNED:
            return
        _WARNED.add(root)
    log.warning("tilefn cannot use its cache directory %s (%s: %s); working without it (set TILEFN_CACHE_DIR "
                "to a writable directory)", root, type(exc).__name__, exc)
