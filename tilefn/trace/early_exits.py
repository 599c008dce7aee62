"""Early exits in a function's source restated so that a traced `if` can hold them (`branch_source.py`).

Tracing runs both branches of an `if` on a device value, so a branch cannot leave the block. Three
rewrites of the syntax tree, each keeping Python's meaning, move early exits to where they do nothing:

- the statements after an `if` one of whose branches always leaves the block (ends in `return`,
  `continue` or `break`) move into its other branch:
  `if c: continue` + REST  ->  `if c: continue` `else: REST`;
- a `continue` ending a loop body (directly or as the last statement of ending `if` branches) is dropped;
- a function whose `return`s end its body, one of them inside an `if`, assigns the value to `RESULT`
  there and returns `RESULT` once at the end (`RESULT` starts as None, the value of falling off the end).

So a `continue` under an `if` on a device value skips the rest of a tile loop's body (the rest is the
`else` branch), and a helper may `return` from both branches of one. Exits left elsewhere stay refused.
"""
from __future__ import annotations

import ast

RESULT = "_tfn_result"
_EXITS = (ast.Return, ast.Continue, ast.Break)
_BLOCKS = ("body", "orelse", "finalbody")


def _leaves(stmts) -> bool:
    """Whether every path through `stmts` ends in a `return`, `continue` or `break`."""
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, _EXITS):
        return True
    return isinstance(last, ast.If) and _leaves(last.body) and _leaves(last.orelse)


def _absorb(stmts) -> list:
    """`stmts` with the statements after a leaving `if` branch moved into the other branch (recursively)."""
    out = []
    for i, stmt in enumerate(stmts):
        rest = stmts[i + 1:]
        if isinstance(stmt, ast.If) and rest and _leaves(stmt.body) != _leaves(stmt.orelse):
            if _leaves(stmt.body):
                stmt.orelse = stmt.orelse + rest
            else:
                stmt.body = stmt.body + rest
            _absorb_children(stmt)
            out.append(stmt)
            return out
        _absorb_children(stmt)
        out.append(stmt)
    return out


def _absorb_children(node) -> None:
    for field in _BLOCKS:
        block = getattr(node, field, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            setattr(node, field, _absorb(block))
    for handler in getattr(node, "handlers", ()):
        handler.body = _absorb(handler.body)


def _tails(stmts):
    """The statements that end `stmts`: its last one, or through an ending `if`, those ending its branches."""
    if not stmts:
        return
    last = stmts[-1]
    if isinstance(last, ast.If):
        yield from _tails(last.body)
        yield from _tails(last.orelse)
    else:
        yield last


def _replace_tails(stmts, replace) -> list:
    """`stmts` with each ending statement `s` replaced by the statements `replace(s)` (an empty branch: `pass`)."""
    if not stmts:
        return stmts
    last = stmts[-1]
    if isinstance(last, ast.If):
        last.body = _replace_tails(last.body, replace) or [ast.copy_location(ast.Pass(), last)]
        last.orelse = _replace_tails(last.orelse, replace)
        return stmts
    return stmts[:-1] + replace(last)


def _drop_ending_continues(tree) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            node.body = _replace_tails(node.body, lambda s: [] if isinstance(s, ast.Continue) else [s]) \
                or [ast.copy_location(ast.Pass(), node)]


def _returns_once(fn) -> None:
    """`fn`'s ending `return`s (one of them inside an `if`) made assignments to RESULT, returned at the end."""
    if not isinstance(fn.body[-1], ast.If) or not any(isinstance(s, ast.Return) for s in _tails(fn.body)):
        return

    def assign(stmt):
        if not isinstance(stmt, ast.Return):
            return [stmt]
        value = stmt.value if stmt.value is not None else ast.Constant(None)
        return [ast.copy_location(ast.Assign([ast.Name(RESULT, ast.Store())], value), stmt)]

    first, last = fn.body[0], fn.body[-1]
    start = ast.copy_location(ast.Assign([ast.Name(RESULT, ast.Store())], ast.Constant(None)), first)
    fn.body = [start, *_replace_tails(fn.body, assign),
               ast.copy_location(ast.Return(ast.Name(RESULT, ast.Load())), last)]


def restate(fn: ast.FunctionDef) -> ast.FunctionDef:
    """`fn` (and the functions nested in it) with the three rewrites applied, in place."""
    fn.body = _absorb(fn.body)
    _drop_ending_continues(fn)
    for node in ast.walk(fn):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _returns_once(node)
    return fn
