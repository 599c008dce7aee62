"""tilefn's loggers and `TILEFN_LOGS`, in the manner of `TORCH_LOGS`.

Every message goes through `logging`, under `tilefn.<area>`:

    tilefn.tune      tuning: each skipped candidate and why, cache hits and misses
    tilefn.compile   each new compile of a kernel, and what in the call's signature was new
    tilefn.cache     the on-disk cache of generated sources
    tilefn.compat    Triton versions and the features tilefn falls back from

`TILEFN_LOGS=tune,compile` shows those areas at INFO on stderr; `+tune` shows DEBUG too; `all`
names every area. `set_logs(tune=logging.DEBUG)` does the same from code. Without either, the
loggers follow the application's own logging configuration (tilefn adds no handler).
"""
from __future__ import annotations

import logging
import os
import sys

AREAS = ("tune", "compile", "cache", "compat")


class _StderrHandler(logging.StreamHandler):
    """A handler writing to sys.stderr as it is when each message comes (so redirecting it works)."""

    def emit(self, record) -> None:
        self.stream = sys.stderr
        super().emit(record)


_HANDLER = _StderrHandler()
_HANDLER.setFormatter(logging.Formatter("[%(name)s] %(levelname)s: %(message)s"))


def parse(spec: str) -> dict[str, int]:
    """`"tune,+compile"` -> {"tune": INFO, "compile": DEBUG}; an unknown area is a ValueError naming the known."""
    levels: dict[str, int] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        level = logging.DEBUG if item.startswith("+") else logging.INFO
        name = item.lstrip("+")
        if name not in AREAS and name != "all":
            raise ValueError(f"TILEFN_LOGS: unknown area {name!r}; known: {', '.join(AREAS)}, all")
        for area in AREAS if name == "all" else (name,):
            levels[area] = min(level, levels.get(area, level))
    return levels


def set_logs(**levels: int) -> None:
    """Show these areas at these levels on stderr (`set_logs(tune=logging.INFO)`); None turns one back off."""
    for area, level in levels.items():
        if area not in AREAS:
            raise ValueError(f"tilefn.logs.set_logs: unknown area {area!r}; known: {', '.join(AREAS)}")
        logger = logging.getLogger(f"tilefn.{area}")
        if level is None:
            logger.removeHandler(_HANDLER)
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
            continue
        logger.setLevel(level)
        if _HANDLER not in logger.handlers:
            logger.addHandler(_HANDLER)
        logger.propagate = False  # (shown once, not again by a root handler)


def configure_from_env() -> None:
    """Apply TILEFN_LOGS (called once, when tilefn is imported)."""
    spec = os.environ.get("TILEFN_LOGS", "")
    if spec:
        set_logs(**parse(spec))
