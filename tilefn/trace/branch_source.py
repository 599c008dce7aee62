"""The kernel's source rewritten so that `if` and `while` statements can branch on device scalars.

Tracing runs the kernel once, so Python alone would trace one branch of an `if`. Each `if` and
`while` of the kernel's source (nested functions included) is rewritten to call the runtime in
`tilefn.trace.branches` (bound to the free variable `__tfn__`); a static test takes the statement's
usual path, a device scalar traces both branches (see that module):

    if TEST: BODY else: ORELSE        ->  _tfn_if_L = __tfn__.branch(TEST, names, exits, L)
                                          if _tfn_if_L.then_(): BODY
                                          if _tfn_if_L.traced: names = _tfn_if_L.orelse()
                                          if _tfn_if_L.else_(): ORELSE
                                          if _tfn_if_L.traced: names = _tfn_if_L.end()
    while TEST: BODY                  ->  _tfn_while_L = __tfn__.while_loop(exits, L)
                                          while _tfn_while_L.step(TEST): BODY

`L` is the statement's line, `names` the names either branch assigns, `exits` the lines of `return`, `break` and
`continue` statements that would leave a traced branch (refused there). In tests, `and`, `or`,
`not` and chained comparisons go through `__tfn__` too (a device operand is combined with `&`,
`|`, `~`), and so do the calls `min(...)` and `max(...)`; a call of any other plain name that is not a
builtin's calls `__tfn__.callee(f)(...)`, which rewrites a helper function of the user's in turn. A plain
`a = b` becomes `a = __tfn__.copy(b)`: a device value gets a value of its own, so two names never share one
proxy (Helion's `U1 = two_x` before a loop rebinding `U1` while reading `two_x`: each is its own carry or
invariant, as Python's names are). Early
exits are restated first (`early_exits.py`), so a `continue` or helper `return` ending a traced branch
is no exit. The new code keeps the source's line numbers and filename, so errors and `inspect` point
at the user's lines.
"""
from __future__ import annotations

import ast
import builtins
import functools
import inspect
import textwrap
import types

from .early_exits import restate

RUNTIME = "__tfn__"


def _call(method: str, *args) -> ast.Call:
    return ast.Call(ast.Attribute(ast.Name(RUNTIME, ast.Load()), method, ast.Load()), list(args), [])


def _thunk(expr) -> ast.Lambda:
    noargs = ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                           defaults=[])
    return ast.Lambda(noargs, expr)


_PURE = (ast.Name, ast.Constant, ast.Attribute)  # operands a chained comparison may evaluate twice


def _test(node):
    """A test expression whose `and`/`or`/`not`/chained comparisons call the runtime."""
    if isinstance(node, ast.BoolOp):
        method = "and_" if isinstance(node.op, ast.And) else "or_"
        first, *rest = (_test(v) for v in node.values)
        return _call(method, first, *map(_thunk, rest))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _call("not_", _test(node.operand))
    if isinstance(node, ast.Compare) and len(node.ops) > 1 and all(isinstance(c, _PURE) for c in node.comparators[:-1]):
        operands = [node.left, *node.comparators]
        parts = [ast.Compare(operands[i], [op], [operands[i + 1]]) for i, op in enumerate(node.ops)]
        return _call("and_", parts[0], *map(_thunk, parts[1:]))
    return node


_HANDLES = ("_tfn_if_", "_tfn_while_")


class _Assigned(ast.NodeVisitor):
    """The names a block of statements binds in its own scope (not in nested functions or classes)."""

    def __init__(self):
        self.names: list[str] = []

    def visit_Name(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)) and node.id not in self.names and not node.id.startswith(_HANDLES):
            self.names.append(node.id)

    def visit_FunctionDef(self, node):
        if node.name not in self.names:
            self.names.append(node.name)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node):
        pass

    def _comprehension(self, node):
        for gen in node.generators:  # only walrus targets leak out of a comprehension; rare enough to skip
            self.visit(gen.iter)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension


def _assigned(stmts) -> list[str]:
    visitor = _Assigned()
    for stmt in stmts:
        visitor.visit(stmt)
    return visitor.names


def _exits(stmts, in_loop: bool = False) -> list[int]:
    """Lines of `return` (and, outside nested loops, `break`/`continue`) that leave `stmts`."""
    lines = []
    for node in stmts:
        if isinstance(node, ast.Return) or (isinstance(node, (ast.Break, ast.Continue)) and not in_loop):
            lines.append(node.lineno)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            lines += _exits(node.body, True) + _exits(node.orelse, in_loop)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                lines += _exits(getattr(node, field, []), in_loop)
    return lines


def _located(stmts, node) -> list:
    """`stmts` with every generated node placed on `node`'s first line (a node spanning lines would put
    a method call on its last, and an error raised there would name that line)."""
    for stmt in stmts:
        for n in ast.walk(stmt):
            if "lineno" in n._attributes and getattr(n, "lineno", None) is None:
                n.lineno = n.end_lineno = node.lineno
                n.col_offset = n.end_col_offset = node.col_offset
    return stmts


def _name_tuple(names, ctx):
    return ast.Tuple([ast.Name(n, ctx()) for n in names], ctx())


class _Rewrite(ast.NodeTransformer):
    def visit_If(self, node):
        self.generic_visit(node)
        handle = f"_tfn_if_{node.lineno}_{node.col_offset}"
        names = _assigned(node.body + node.orelse)
        exits = _exits(node.body + node.orelse)
        load = lambda: ast.Name(handle, ast.Load())  # noqa: E731
        method = lambda m: ast.Call(ast.Attribute(load(), m, ast.Load()), [], [])  # noqa: E731
        traced = ast.Attribute(load(), "traced", ast.Load())

        def merge(m):
            if not names:
                return ast.If(traced, [ast.Expr(method(m))], [])
            return ast.If(traced, [ast.Assign([_name_tuple(names, ast.Store)], method(m))], [])

        branch = _call("branch", _test(node.test), ast.Tuple([ast.Constant(n) for n in names], ast.Load()),
                       ast.Tuple([ast.Constant(n) for n in exits], ast.Load()), ast.Constant(node.lineno))
        stmts = [ast.Assign([ast.Name(handle, ast.Store())], branch),
                 ast.If(method("then_"), node.body, []),
                 merge("orelse"),
                 ast.If(method("else_"), node.orelse or [ast.Pass()], []),
                 merge("end")]
        return _located(stmts, node)

    def visit_While(self, node):
        self.generic_visit(node)
        if node.orelse:
            return node  # `while ... else` is refused inside tile loops (statements.py); plain Python elsewhere
        handle = f"_tfn_while_{node.lineno}_{node.col_offset}"
        make = _call("while_loop", ast.Tuple([ast.Constant(n) for n in _exits(node.body)], ast.Load()),
                     ast.Constant(node.lineno))
        step = ast.Call(ast.Attribute(ast.Name(handle, ast.Load()), "step", ast.Load()), [_test(node.test)], [])
        stmts = [ast.Assign([ast.Name(handle, ast.Store())], make), ast.While(step, node.body, [])]
        return _located(stmts, node)

    def visit_Assign(self, node):
        self.generic_visit(node)
        if _is_name_copy(node):
            node.value = _located([ast.Expr(_call("copy", node.value))], node)[0].value
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        if _is_min_max(node):
            call = _call("builtin", node.func, *node.args)
            return _located([ast.Expr(call)], node)[0].value
        if _calls_helper(node):
            node.func = _located([ast.Expr(_call("callee", node.func))], node)[0].value
        return node


def _is_min_max(node) -> bool:
    return isinstance(node.func, ast.Name) and node.func.id in ("min", "max") and not node.keywords


def _calls_helper(node) -> bool:
    """A call of a plain name other than a builtin's: maybe a helper function, rewritten in turn (`callee`)."""
    return isinstance(node.func, ast.Name) and not hasattr(builtins, node.func.id)


def _is_name_copy(node) -> bool:
    """`a = b` (plain names): a device value gets a value of its own, so `a` and `b` stay apart as loop carries."""
    return isinstance(node.value, ast.Name) and all(isinstance(t, ast.Name) for t in node.targets)


def _needs_rewrite(tree) -> bool:
    return any(isinstance(n, (ast.If, ast.While)) or (isinstance(n, ast.Call) and (_is_min_max(n) or _calls_helper(n)))
               or (isinstance(n, ast.Assign) and _is_name_copy(n)) for n in ast.walk(tree))


@functools.lru_cache(maxsize=256)
def _rewritten_code(code):
    """The code object of `code`'s function with its statements rewritten, or None (no source, nothing to do)."""
    try:
        lines, start = inspect.getsourcelines(code)
        module = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return None
    fn = module.body[0] if module.body else None
    if not isinstance(fn, ast.FunctionDef) or fn.name != code.co_name or not _needs_rewrite(fn):
        return None
    ast.increment_lineno(fn, max(start - 1, 0))  # the file's line numbers, before any are recorded
    fn = _Rewrite().visit(restate(fn))
    fn.decorator_list, fn.returns = [], None
    args = fn.args
    args.defaults, args.kw_defaults = [], [None] * len(args.kwonlyargs)  # the original function's are reused
    for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
        if arg is not None:
            arg.annotation = None
    outer_args = [ast.arg(n) for n in (RUNTIME, *code.co_freevars)]
    outer = ast.FunctionDef("_tfn_outer", ast.arguments(posonlyargs=[], args=outer_args, vararg=None, kwonlyargs=[],
                                                         kw_defaults=[], kwarg=None, defaults=[]),
                            [fn, ast.Return(ast.Name(fn.name, ast.Load()))], [], None)
    ast.copy_location(outer, fn)
    wrapper = ast.fix_missing_locations(ast.Module([outer], []))
    compiled = compile(wrapper, code.co_filename, "exec", dont_inherit=True)
    outer_code = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
    return next(c for c in outer_code.co_consts if isinstance(c, types.CodeType) and c.co_name == code.co_name)


def branching(fn, runtime):
    """`fn` with its `if`/`while` statements routed through `runtime`; `fn` itself when there are none."""
    if not isinstance(fn, types.FunctionType):
        return fn
    code = _rewritten_code(fn.__code__)
    if code is None:
        return fn
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
    cells[RUNTIME] = types.CellType(runtime)
    new = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__,
                             tuple(cells[name] for name in code.co_freevars))
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__, new.__module__ = fn.__qualname__, fn.__module__
    return new
