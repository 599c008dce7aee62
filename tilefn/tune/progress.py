"""Tuning progress on stderr: a live rich bar on a terminal, a plain line now and then elsewhere.

`TuningProgress(evaluate, name, total, verbose)` wraps a candidate evaluator (config -> seconds) and
counts, with the best time so far; `close(summary, config)` ends the display and prints the summary
line, then the winning Config on a line of its own (to paste into `tfn.jit(config=...)`).
"""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

PLAIN_EVERY_S = 10.0  # how often a plain (not a terminal) stderr gets a line


class TuningProgress:
    """Counts evaluations and shows them; see the module docstring."""

    def __init__(self, evaluate, name: str, total: int, verbose: bool, stream=None, seconds: float | None = None,
                 clock=time.monotonic, started: float | None = None):
        self.evaluate, self.name, self.total, self.verbose = evaluate, name, max(total, 1), verbose
        self.seconds, self.clock = seconds, clock
        self.started = started if started is not None else clock()  # (the tuning's start, on `clock`)
        self.evaluating_s = 0.0  # the time spent in evaluations so far
        self.stream = stream if stream is not None else sys.stderr
        self.prefetch = evaluate.prefetch
        self.count, self.best = 0, float("inf")
        self._last_line = time.monotonic()
        self._bar = self._task = None
        if verbose and self.stream.isatty():
            self._bar = Progress(TextColumn("tuning {task.fields[kernel]}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("best {task.fields[best]}"), TimeElapsedColumn(),
                                 console=Console(file=self.stream), transient=True)
            self._task = self._bar.add_task("tune", total=self.total, kernel=name, best="-")
            self._bar.start()

    def __call__(self, config) -> float:
        began = self.clock()
        seconds = self.evaluate(config)
        self.evaluating_s += self.clock() - began
        self.count += 1
        self.best = min(self.best, seconds)
        if self._bar is not None:
            self._bar.update(self._task, completed=min(self.count, self.total), best=_ms(self.best))
        elif self.verbose and time.monotonic() - self._last_line >= PLAIN_EVERY_S:
            self._last_line = time.monotonic()
            print(f"tilefn.tune: {self.name}: {self.count}/{self.total} configs, best {_ms(self.best)}",
                  file=self.stream, flush=True)
        return seconds

    def out_of_time(self) -> bool:
        """Whether another evaluation, taking as long as the average one so far, would end past the time
        limit (`seconds`, counted from `started`; None: no limit)."""
        if self.seconds is None:
            return False
        return self.elapsed() + self.evaluating_s / max(self.count, 1) >= self.seconds

    def elapsed(self) -> float:
        """Seconds since the tuning started."""
        return self.clock() - self.started

    def close(self, summary: str | None = None, config=None) -> None:
        """Stop the live bar; when verbose and given, print `summary` and then `config` on its own line."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.verbose and summary is not None:
            print(summary, file=self.stream)
            print(f"    {config!r}", file=self.stream, flush=True)


def _ms(seconds: float) -> str:
    return "-" if seconds == float("inf") else f"{seconds * 1e3:.3f} ms"
