"""One result per example run or test method: PASS, FAIL <category>: <message> or SKIP <reason>."""
from __future__ import annotations

import json
import unittest

import attrs

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


class WrongResult(AssertionError):
    """A kernel's output differs from its reference (raised by the shim's `run_example`)."""


class HelionInternal(unittest.SkipTest):
    """A file used a Helion internal (helion._compiler, autotuner internals...) tilefn does not have."""


class ItemTimeout(Exception):
    """One example run or test method ran past its time limit."""


@attrs.frozen
class Outcome:
    name: str
    status: str
    category: str = ""
    message: str = ""

    def line(self) -> str:
        if self.status == PASS:
            return f"PASS {self.name}"
        if self.status == SKIP:
            return f"SKIP {self.name}: {self.message}"
        return f"FAIL {self.name} {self.category}: {self.message}"

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Outcome":
        return cls(**json.loads(text))


def first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def timed_out(exc: BaseException) -> bool:
    """An ItemTimeout, also when something re-raised it as another error (Triton's interpreter
    raises InterpreterError(repr(error)) for errors inside a kernel)."""
    while exc is not None:
        if isinstance(exc, ItemTimeout) or str(exc).startswith("ItemTimeout("):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def category(exc: BaseException) -> str:
    """The failure's group in the summary: a few named kinds, else the exception's class name."""
    if isinstance(exc, WrongResult):
        return "wrong-result"
    if timed_out(exc):
        return "timeout"
    if isinstance(exc, NotImplementedError):
        return "not-implemented"
    if isinstance(exc, ImportError):
        return "import"
    if isinstance(exc, AttributeError) and "helion" in str(exc):
        return "missing-api"
    if isinstance(exc, AssertionError):
        return "assertion"
    return type(exc).__name__


def from_exception(name: str, exc: BaseException) -> Outcome:
    """SKIP for skips (Helion internals included), else FAIL in the exception's category."""
    if isinstance(exc, unittest.SkipTest):
        return Outcome(name, SKIP, message=first_line(exc) or "skipped")
    message = first_line(exc) or type(exc).__name__
    return Outcome(name, FAIL, category(exc), message)
