"""Errors raised to users: each names the user's file:line and shows it with a caret."""
from __future__ import annotations

import linecache
import os
import sys

import attrs

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_SKIPPED_DIRS = (_PACKAGE_DIR,) + tuple(
    os.path.dirname(os.path.abspath(m.__file__))
    for m in (sys.modules.get("torch"), sys.modules.get("pyrsistent"), sys.modules.get("attr"))
    if m is not None and getattr(m, "__file__", None)
)


@attrs.frozen
class SourceInfo:
    """Where in the user's code an equation or error came from."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno}"

    def excerpt(self) -> str:
        line = linecache.getline(self.filename, self.lineno).rstrip("\n")
        if not line.strip():
            return ""
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        return f"    {line}\n    {' ' * indent}{'^' * len(stripped)}"


def _is_internal(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path.startswith(_SKIPPED_DIRS) or filename.startswith(("<frozen", "<tilefn"))  # (generated launchers)


def user_frame(depth: int = 1):
    """The innermost stack frame outside tilefn, torch and their helpers."""
    frame = sys._getframe(depth + 1)
    while frame is not None and _is_internal(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def called_from_tilefn(frame) -> bool:
    """Whether the innermost frame from `frame` outward that is not torch's (or its helpers') is tilefn's
    own code (a `tl.` function computing a tensor's metadata), not the user's."""
    while frame is not None and _is_internal(frame.f_code.co_filename) and not _in_tilefn(frame.f_code.co_filename):
        frame = frame.f_back
    return frame is not None and _in_tilefn(frame.f_code.co_filename)


def _in_tilefn(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE_DIR) or filename.startswith("<tilefn")


def user_source(depth: int = 1) -> SourceInfo | None:
    """Where the innermost stack frame outside tilefn, torch and their helpers is."""
    frame = user_frame(depth)
    if frame is None:
        return None
    return SourceInfo(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


class MatmulAccumulationWarning(UserWarning):
    """`acc += a @ b` in a loop: the product is rounded to its own dtype and added outside the matrix unit."""


class TilefnError(Exception):
    """Base class: a problem in the user's kernel or its inputs."""

    def __init__(self, message: str, source: SourceInfo | None = None):
        self.message = message
        self.source = source if source is not None else user_source(2)
        super().__init__(self._render())

    def _render(self) -> str:
        if self.source is None:
            return self.message
        excerpt = self.source.excerpt()
        return f"{self.source}: {self.message}" + (f"\n{excerpt}" if excerpt else "")


class DataDependentControlFlow(TilefnError):
    """Python control flow (`if`, `while`, `bool()`) on a value only known on the device."""


class UnsupportedOp(TilefnError):
    """A torch function or method with no tilefn lowering."""


class ShapeError(TilefnError):
    """Shapes that don't match: wrong rank, a tile on another dimension, a bad store."""


class HostReadsDevice(TilefnError):
    """Host code that needs the value of a tensor (not just its shape)."""


class LoopCarryError(TilefnError):
    """A value rebound inside a tile loop that can't be made a loop carry."""


class ArgumentError(TilefnError):
    """A kernel argument of a type or on a device tilefn can't take."""


class TracingError(TilefnError):
    """Any other misuse found while tracing."""


class ConfigError(TilefnError, ValueError):
    """A Config that does not fit the kernel: a tunable it never registers, or a value outside its choices."""


class InvalidTileRange(ShapeError):
    """A tile loop whose static begin is past its end."""


class TileUnpackError(ShapeError):
    """A single tile unpacked as if it were several (`a, b = tile`): `tl.tile(m, n)` is one range."""


class RankMismatch(ShapeError):
    """A tensor indexed with more or fewer indices than it has dimensions."""


class DotBatchMismatch(ShapeError):
    """A batched matrix product whose operands' batch dimensions differ."""


class UnsupportedStatement(TracingError):
    """A Python statement tilefn cannot trace in a kernel (`for ... else`, `while ... else` in a tile loop)."""


class HostTensorInExpression(TracingError):
    """A whole host tensor used as a value in a tile loop's arithmetic (`x[t] + scale_tensor`): index it."""


class TileBoundError(ShapeError):
    """A tile given where a loop bound (an int) belongs: `tl.tile(t)` instead of `tl.tile(t.begin, t.end)`."""


class DotDtypeError(TracingError, TypeError):
    """A matrix product whose operand, accumulator or out dtypes do not go together (int8 into a float acc,
    two float8 kinds, an out_dtype torch refuses)."""


class SettingsError(TilefnError, ValueError):
    """A TILEFN_* environment variable whose value tilefn cannot use."""


class KernelResourceError(TilefnError):
    """A kernel that needs more of a GPU's per-block resources (shared memory, threads) under its Config than
    the device has: Triton compiled it, the device cannot load it."""
