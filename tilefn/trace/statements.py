"""Statements a traced kernel cannot mean what Python would make them mean, found in its source.

Tracing runs the kernel once, so `for t in tl.tile(...): ... else: ...` would run the `else` block
on the host after the loop was recorded, and a `while ... else` inside a tile loop would run its
`else` at trace time: both are refused (as Helion refuses them) at the `else`'s line.
"""
from __future__ import annotations

import ast
import functools
import inspect
import textwrap

from ..errors import SourceInfo, UnsupportedStatement


@functools.lru_cache(maxsize=256)
def _tree(code):
    """The parsed source of the function `code` belongs to (line numbers as in its file), or None."""
    try:
        lines, start = inspect.getsourcelines(code)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return None  # no source (a REPL, exec'd code): nothing to check
    ast.increment_lineno(tree, max(start - 1, 0))
    return tree


def _else_line(node) -> int:
    return node.orelse[0].lineno - 1 if node.orelse else node.lineno


def check_tile_loop(code, lineno: int) -> None:
    """Refuse `for ... else` on the tile loop at `lineno` of `code` and `while/for ... else` in its body."""
    tree = _tree(code)
    if tree is None:
        return
    loop = next((n for n in ast.walk(tree) if isinstance(n, ast.For) and n.lineno <= lineno <= n.iter.end_lineno),
                None)
    if loop is None:
        return
    where = lambda node: SourceInfo(code.co_filename, _else_line(node), code.co_name)  # noqa: E731
    if loop.orelse:
        raise UnsupportedStatement("`for ... else` on a tile loop: the loop is traced once, so the `else` block "
                                   "would run on the host after it; move that code after the loop",
                                   source=where(loop))
    for node in ast.walk(loop):
        if node is not loop and isinstance(node, (ast.For, ast.While)) and node.orelse:
            kind = "while" if isinstance(node, ast.While) else "for"
            raise UnsupportedStatement(f"`{kind} ... else` inside a tile loop is not supported; put the `else` "
                                       "block's code after the loop (guarded by a flag if it must be skipped)",
                                       source=where(node))
