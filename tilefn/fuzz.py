"""Whole tile programs for fuzzing: an immutable description, its kernel and its eager reference.

    from hypothesis import given, strategies as st
    import tilefn.fuzz as fz
    import tilefn.testing as tt

    @given(st.data())
    def test_fuzz(data):
        program = data.draw(fz.programs())
        kernel, _ = fz.build(program)
        config = data.draw(st.none() | tt.configs(kernel, *fz.inputs(program)))
        fz.check(program, config)

A `TileProgram` is one of five kernel shapes (`pointwise` over a 2-d grid of tiles, `row_reduce`
/ `col_reduce` over whole rows / columns with a broadcast follow-up, `carry`: an inner `tl.tile` loop carrying 1-2
reductions, `matmul`: `addmm` or `@` over k tiles with an operand prologue and an epilogue), whose
values are expression trees over loaded tiles (pointwise ops from a table, casts, `where`,
broadcast `[None, :]` / `[:, None]` operands), optionally reading its main operand through a
gather `x[idx[tm], ...]`, at drawn (ragged) sizes and dtype. `kernel_source` writes the tilefn
kernel as Python text and `reference_source` the same computation on whole tensors in eager
PyTorch (no tiles): `build` execs both under a file name linecache knows, so tilefn's errors quote
the generated line. `check` runs compiled == `tfn.interpret` == eager (`tilefn.testing.assert_matches`)
and puts both sources and the program's repr (pasteable) in any failure.
"""
from __future__ import annotations

import hashlib
import linecache
from typing import Union

import attrs
import torch

from . import lang
from .config import Config
from .testing import _strategies, assert_matches, sizes

__all__ = ["Leaf", "Const", "Unary", "Binary", "Where", "TileProgram", "programs", "kernel_source",
           "reference_source", "build", "inputs", "check", "op_kinds", "FLOAT_UNARY", "INT_UNARY",
           "FLOAT_BINARY", "INT_BINARY", "REDUCTIONS"]


# --- the description -------------------------------------------------------------------------
@attrs.frozen
class Leaf:
    """A named value: a loaded tile (`x_t`), a broadcast operand (`r_t`, `c_t`; `i_t`: the int32 or
    int64 idx as a column), an earlier result (`s_b`)."""

    name: str


@attrs.frozen
class Const:
    value: Union[int, float]


@attrs.frozen
class Unary:
    op: str
    arg: "Expr"


@attrs.frozen
class Binary:
    op: str
    lhs: "Expr"
    rhs: "Expr"


@attrs.frozen
class Where:
    """`torch.where(leaf > threshold, lhs, rhs)`: the condition reads an input, exact everywhere."""

    leaf: str
    threshold: Union[int, float]
    lhs: "Expr"
    rhs: "Expr"


Expr = Union[Leaf, Const, Unary, Binary, Where]

# Op tables: name -> template. Every op is continuous on the values it sees (no floor, sign or
# comparisons of computed values) and keeps magnitudes bounded, so tolerances stay meaningful.
FLOAT_UNARY = {
    "neg": "(-{})", "abs": "({}).abs()", "exp": "torch.exp(({}).clamp(-4.0, 2.0))",
    "log": "torch.log(({}).abs() + 1.0)", "sqrt": "torch.sqrt(({}).abs() + 0.5)",
    "rsqrt": "torch.rsqrt(({}).abs() + 1.0)", "tanh": "torch.tanh({})", "sigmoid": "torch.sigmoid({})",
    "relu": "torch.relu({})", "silu": "torch.nn.functional.silu({})", "gelu": "torch.nn.functional.gelu({})",
    "erf": "torch.erf({})", "sin": "torch.sin({})", "cos": "torch.cos({})", "clamp": "torch.clamp({}, -1.5, 1.5)",
    "square": "(({0}) * ({0}))", "pow": "((({}).abs() + 0.5) ** 1.5)", "affine": "(({}) * 0.5 + 0.25)",
    "via_bf16": "({}).to(torch.bfloat16).to(torch.float32)",
}
INT_UNARY = {"neg": "(-{})", "abs": "({}).abs()", "times3": "(({}) * 3)", "mod5": "(({}) % 5)",
             "floordiv3": "(({}) // 3)", "clamp10": "torch.clamp({}, -10, 10)"}
FLOAT_BINARY = {"add": "({} + {})", "sub": "({} - {})", "mul": "({} * {})", "maximum": "torch.maximum({}, {})",
                "minimum": "torch.minimum({}, {})", "div": "({} / (({}).abs() + 1.0))"}
INT_BINARY = {"add": "({} + {})", "sub": "({} - {})", "mul": "({} * {})", "maximum": "torch.maximum({}, {})",
              "minimum": "torch.minimum({}, {})", "and": "({} & {})", "or": "({} | {})", "xor": "({} ^ {})"}
_UNARY, _BINARY = FLOAT_UNARY | INT_UNARY, FLOAT_BINARY | INT_BINARY  # shared names spell the same op
SCALAR_OK = ("add", "sub", "mul", "and", "or", "xor")  # binary ops that take a Python number operand
REDUCTIONS = ("sum", "amax", "amin", "mean")
# carry loops: reduction -> (initial accumulator, how a tile's partial result joins it)
_CARRY = {"sum": ("0.0", "acc{i} + torch.sum(v, dim=1)"), "mean": ("0.0", "acc{i} + torch.sum(v, dim=1)"),
          "amax": ('float("-inf")', "torch.maximum(acc{i}, torch.amax(v, dim=1))"),
          "amin": ('float("inf")', "torch.minimum(acc{i}, torch.amin(v, dim=1))")}
# INT_TO_BF16, a bug found by this fuzzer (tests/test_fuzz.py::test_int_to_bfloat16_cast): compiled for
# the CPU, `int_tile.to(tl.bfloat16)` (what tilefn emits for `.to(torch.bfloat16)` of an int tile and
# for a where() of a bfloat16 and an int tile) gives the int's bit pattern as a bfloat16 (1 -> 9.2e-41),
# as Triton 3.6's interpreter casts. Fixed (`tilefn.lower.emit.Emitter.converted`); the generator still
# lets ints meet floats only as `idx * 0.5` (_index_scale).
KINDS = ("pointwise", "row_reduce", "col_reduce", "carry", "matmul")


@attrs.frozen
class TileProgram:
    """One drawn kernel. `body` is the main value; `after` the follow-up (row_reduce / col_reduce: whole
    rows / columns over `row`, the body, and `s_b`, its reduction broadcast back; carry: a 1-d map of `acc`; matmul: the epilogue over `acc_t` and `bias_t`);
    `pre` the matmul's prologue on `x_t`. `gather_rows`: x has this many rows and is read through
    `idx` (None: read directly). `x_transposed`: x is column-major. Inputs come from `seed`."""

    kind: str
    dtype: torch.dtype
    m: int
    n: int
    body: Expr
    after: Expr | None = None
    reductions: tuple = ()
    k: int = 1
    pre: Expr | None = None
    matmul_form: str = "addmm"
    gather_rows: int | None = None
    index_dtype: torch.dtype = torch.int64
    x_transposed: bool = False
    seed: int = 0


# --- rendering -------------------------------------------------------------------------------
def render(expr: Expr, bind: dict) -> str:
    """`expr` as Python text, each leaf replaced by `bind[name]`."""
    if isinstance(expr, Leaf):
        return bind[expr.name]
    if isinstance(expr, Const):
        return repr(expr.value)
    if isinstance(expr, Where):
        return (f"torch.where({bind[expr.leaf]} > {expr.threshold!r}, {render(expr.lhs, bind)}, "
                f"{render(expr.rhs, bind)})")
    if isinstance(expr, Unary):
        return _UNARY[expr.op].format(render(expr.arg, bind))
    return _BINARY[expr.op].format(render(expr.lhs, bind), render(expr.rhs, bind))


def leaves(expr: Expr | None) -> frozenset:
    """The leaf names `expr` reads (conditions of `where` included)."""
    if expr is None or isinstance(expr, Const):
        return frozenset()
    if isinstance(expr, Leaf):
        return frozenset([expr.name])
    if isinstance(expr, Unary):
        return leaves(expr.arg)
    if isinstance(expr, Binary):
        return leaves(expr.lhs) | leaves(expr.rhs)
    return frozenset([expr.leaf]) | leaves(expr.lhs) | leaves(expr.rhs)


def _dtype(d: torch.dtype) -> str:
    return f"torch.{str(d).split('.')[-1]}"


def _reduced_dtype(p: TileProgram, reduction: str) -> torch.dtype:
    """torch's result dtype for `reduction` of a row of p.dtype (int sums widen to int64)."""
    return torch.int64 if reduction == "sum" and not p.dtype.is_floating_point else p.dtype


def _kernel_leaves(p: TileProgram, col: str, row: str) -> dict:
    """Kernel-side loads of the inputs, indexed by the row and column tile expressions."""
    x = f"x[rows, {col}]" if p.gather_rows is not None else f"x[{row}, {col}]"
    r = "r[:][None, :]" if col == ":" else f"r[{col}][None, :]"
    return {"x_t": x, "y_t": f"y[{row}, {col}]", "r_t": r, "c_t": f"c[{row}][:, None]",
            "i_t": f"idx[{row}][:, None]{_index_scale(p)}"}


def _reference_leaves(p: TileProgram) -> dict:
    return {"x_t": "x[idx.long()]", "y_t": "y", "r_t": "r[None, :]", "c_t": "c[:, None]",
            "i_t": f"idx[:, None]{_index_scale(p)}"}


def _index_scale(p: TileProgram) -> str:
    """i_t in float programs: int * 0.5 promotes at once (float-only ops like gelu refuse ints in eager torch)."""
    return " * 0.5" if p.dtype.is_floating_point else ""


def _loads(used: frozenset, bind: dict, indent: str) -> list[str]:
    return [f"{indent}{name} = {bind[name]}" for name in sorted(used & bind.keys())]


def _gather(p: TileProgram, used: frozenset, indent: str, row: str = "tm") -> list[str]:
    return [f"{indent}rows = idx[{row}]"] if p.gather_rows is not None and "x_t" in used else []


def _matmul_kernel(p: TileProgram) -> list[str]:
    prologue = render(p.pre, {"x_t": "x_t"})
    product = (f"torch.addmm(acc, {prologue}, w[tk, tn])" if p.matmul_form == "addmm"
               else f"acc + ({prologue}) @ w[tk, tn]")
    return ["def kernel(x, w, bias):", "    m, k = x.shape", "    n = w.shape[1]",
            f"    out = torch.empty([m, n], dtype={_dtype(p.dtype)}, device=x.device)",
            "    for tm, tn in tl.tile([m, n]):", "        acc = tl.zeros([tm, tn], dtype=torch.float32)",
            "        for tk in tl.tile(k):", "            x_t = x[tm, tk]", f"            acc = {product}",
            "        bias_t = bias[tn][None, :]",
            f"        out[tm, tn] = {render(p.after, {'acc_t': 'acc', 'bias_t': 'bias_t'})}", "    return out"]


def _pointwise_kernel(p: TileProgram) -> list[str]:
    bind, used = _kernel_leaves(p, "tn", "tm"), leaves(p.body)
    return (_HEAD + [f"    out = torch.empty([m, n], dtype={_dtype(p.dtype)}, device=y.device)",
                     "    for tm, tn in tl.tile([m, n]):"]
            + _gather(p, used, "        ") + _loads(used, bind, "        ")
            + [f"        out[tm, tn] = {render(p.body, {k: k for k in bind})}", "    return out"])


def _reduce_kernel(p: TileProgram) -> list[str]:
    """row_reduce: a 1-d grid over rows, whole rows `[tm, :]`; col_reduce: over columns, `[:, tn]`."""
    rows = p.kind == "row_reduce"
    row, col, tile, extent, axis = ("tm", ":", "tm", "m", 1) if rows else (":", "tn", "tn", "n", 0)
    bind, used = _kernel_leaves(p, col, row), leaves(p.body) | leaves(p.after)
    (reduction,) = p.reductions
    names = {k: k for k in bind} | {"row": "row", "s_b": "s[:, None]" if rows else "s[None, :]"}
    return (_HEAD + [f"    red = torch.empty([{extent}], dtype={_dtype(_reduced_dtype(p, reduction))}, device=y.device)",
                     f"    out = torch.empty([m, n], dtype={_dtype(p.dtype)}, device=y.device)",
                     f"    for {tile} in tl.tile({extent}):"]
            + _gather(p, used, "        ", row) + _loads(used, bind, "        ")
            + [f"        row = {render(p.body, names)}", f"        s = torch.{reduction}(row, dim={axis})",
               f"        red[{tile}] = s", f"        out[{row}, {col}] = {render(p.after, names)}", "    return red, out"])


def _carry_kernel(p: TileProgram) -> list[str]:
    bind, used = _kernel_leaves(p, "tn", "tm"), leaves(p.body)
    outs = [f"out{i}" for i in range(len(p.reductions))]
    lines = _HEAD + [f"    {o} = torch.empty([m], dtype=torch.float32, device=y.device)" for o in outs]
    lines += ["    for tm in tl.tile(m):"] + _gather(p, used, "        ")
    lines += [f"        acc{i} = tl.full([tm], {_CARRY[red][0]}, dtype=torch.float32)" for i, red in enumerate(p.reductions)]
    lines += ["        for tn in tl.tile(n):"] + _loads(used, bind, "            ")
    lines += [f"            v = ({render(p.body, {k: k for k in bind})}).to(torch.float32)"]
    lines += [f"            acc{i} = {_CARRY[red][1].format(i=i)}" for i, red in enumerate(p.reductions)]
    for i, red in enumerate(p.reductions):
        acc = f"(acc{i} / n)" if red == "mean" else f"acc{i}"
        lines.append(f"        out{i}[tm] = {render(p.after, {'acc': acc})}")
    return lines + [f"    return {', '.join(outs)}"]


_HEAD = ["def kernel(x, y, r, c, idx):", "    m, n = y.shape"]
_KERNELS = {"pointwise": _pointwise_kernel, "row_reduce": _reduce_kernel, "col_reduce": _reduce_kernel, "carry": _carry_kernel,
            "matmul": _matmul_kernel}


def kernel_source(p: TileProgram) -> str:
    """The tilefn kernel for `p` as Python source (`def kernel(...)`)."""
    return "\n".join(_KERNELS[p.kind](p)) + "\n"


def reference_source(p: TileProgram) -> str:
    """The same computation on whole tensors in eager PyTorch (`def reference(...)`)."""
    d = _dtype(p.dtype)
    if p.kind == "matmul":
        acc = f"(({render(p.pre, {'x_t': 'x'})}).float() @ w.float())"
        return ("def reference(x, w, bias):\n"
                f"    return ({render(p.after, {'acc_t': acc, 'bias_t': 'bias[None, :]'})}).to({d}, copy=True)\n")
    bind = _reference_leaves(p)
    if p.kind == "pointwise":
        return f"def reference(x, y, r, c, idx):\n    return ({render(p.body, bind)}).to({d}, copy=True)\n"
    if p.kind in ("row_reduce", "col_reduce"):
        (reduction,) = p.reductions
        rows = p.kind == "row_reduce"
        names = bind | {"row": "row", "s_b": "s[:, None]" if rows else "s[None, :]"}
        return ("def reference(x, y, r, c, idx):\n"
                f"    row = {render(p.body, names)}\n"
                f"    s = torch.{reduction}(row, dim={1 if rows else 0})\n"
                f"    return s.to({_dtype(_reduced_dtype(p, reduction))}, copy=True), ({render(p.after, names)}).to({d}, copy=True)\n")
    results = [render(p.after, {"acc": f"torch.{red}(v, dim=1)"}) for red in p.reductions]
    return ("def reference(x, y, r, c, idx):\n"
            f"    v = ({render(p.body, bind)}).to(torch.float32)\n"
            f"    return {', '.join(results)}\n")


def _exec(source: str, name: str):
    """Define `name` from `source`, registered with linecache so tracebacks and tilefn quote it."""
    filename = f"<tilefn.fuzz {name} {hashlib.sha1(source.encode()).hexdigest()[:12]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace = {"torch": torch, "tl": lang}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


def build(p: TileProgram):
    """(kernel, reference): plain Python functions made from the generated sources."""
    return _exec(kernel_source(p), "kernel"), _exec(reference_source(p), "reference")


def inputs(p: TileProgram) -> tuple:
    """The arguments of `p`'s kernel and reference, made from `p.seed`."""
    g = torch.Generator().manual_seed(p.seed)

    def values(*shape):
        if p.dtype.is_floating_point:
            return torch.randn(shape, generator=g).to(p.dtype)
        return torch.randint(-20, 21, shape, generator=g, dtype=p.dtype)

    def layout(x):
        return x.t().contiguous().t() if p.x_transposed else x

    if p.kind == "matmul":
        return layout(values(p.m, p.k)), values(p.k, p.n), values(p.n)
    rows = p.gather_rows if p.gather_rows is not None else p.m
    idx = (torch.randint(0, rows, (p.m,), generator=g) if p.gather_rows is not None else torch.arange(p.m))
    return layout(values(rows, p.n)), values(p.m, p.n), values(p.n), values(p.m), idx.to(p.index_dtype)


# --- checking --------------------------------------------------------------------------------
def uses_bfloat16(p: TileProgram) -> bool:
    return p.dtype == torch.bfloat16 or "via_bf16" in op_kinds(p)


def tolerance(p: TileProgram, expected) -> tuple[float, float]:
    """(atol, rtol): per precision, atol scaled by the largest reference magnitude (cancellation)."""
    floats = [t for t in (expected if isinstance(expected, tuple) else (expected,)) if t.dtype.is_floating_point]
    scale = max([1.0] + [t.float().abs().max().item() for t in floats if t.numel()])
    # bfloat16: Triton's CPU interpreter truncates float32 -> bfloat16 (torch rounds): 1 ulp per op
    atol, rtol = (6e-2, 6e-2) if uses_bfloat16(p) else (1e-3, 1e-3)
    return atol * scale, rtol


def check(p: TileProgram, config: Config | None = None) -> None:
    """Compiled (under `config`, else the default) == `tfn.interpret` == the eager reference for `p`."""
    kernel, reference = build(p)
    args = inputs(p)
    try:
        atol, rtol = tolerance(p, reference(*args))
        assert_matches(kernel, reference, *args, configs=None if config is None else [config], atol=atol, rtol=rtol)
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc}\n--- kernel ---\n{kernel_source(p)}--- reference ---\n"
                             f"{reference_source(p)}--- program ---\n{p!r}\n--- config ---\n{config!r}") from exc


def op_kinds(p: TileProgram) -> frozenset:
    """Names of what `p` exercises: its kind, ops, reductions, gather, dtype, matmul form."""
    found = {p.kind, _dtype(p.dtype)} | {f"reduce:{r}" for r in p.reductions}
    reads_x = p.kind == "matmul" or "x_t" in leaves(p.body) | leaves(p.after)
    found |= {"gather"} if p.gather_rows is not None and reads_x else set()
    found |= {"transposed"} if p.x_transposed and reads_x else set()
    found |= {p.matmul_form} if p.kind == "matmul" else set()
    stack = [e for e in (p.body, p.after, p.pre) if e is not None]
    while stack:
        e = stack.pop()
        if isinstance(e, Unary):
            found.add(e.op)
            stack.append(e.arg)
        elif isinstance(e, Binary):
            found.add(e.op)
            stack += [e.lhs, e.rhs]
        elif isinstance(e, Where):
            found.add("where")
            stack += [e.lhs, e.rhs]
        elif isinstance(e, Leaf) and e.name in ("r_t", "c_t", "i_t", "s_b", "bias_t"):
            found |= {"broadcast"} | ({"int index operand"} if e.name == "i_t" else set())
    return frozenset(found)


# --- strategies ------------------------------------------------------------------------------
def expressions(dtype: torch.dtype, names: tuple, conditions: tuple, depth: int = 3):
    """Expression trees of up to `depth` ops over the leaves `names`; `where` tests a `conditions` leaf."""
    s = _strategies()
    floating = dtype.is_floating_point
    unary = sorted(op for op in (FLOAT_UNARY if floating else INT_UNARY) if op != "via_bf16" or dtype == torch.float32)
    binary = sorted(FLOAT_BINARY if floating else INT_BINARY)
    with_scalar = [op for op in binary if op in SCALAR_OK]
    consts = s.sampled_from([0.5, -1.25, 2.0, 3.0]) if floating else s.integers(-5, 5)
    thresholds = s.sampled_from([-0.5, 0.0, 0.3]) if floating else s.integers(-5, 5)
    leaf = s.sampled_from(names).map(Leaf)

    def scalar_op(op, expr, value, left):
        return Binary(op, Const(value), expr) if left else Binary(op, expr, Const(value))

    def extend(children):
        unary_op = s.builds(Unary, s.sampled_from(unary), children)
        ops = [unary_op, unary_op, s.builds(Binary, s.sampled_from(binary), children, children),
               s.builds(scalar_op, s.sampled_from(with_scalar), children, consts, s.booleans())]
        if conditions:
            ops.append(s.builds(Where, s.sampled_from(conditions), thresholds, children, children))
        return s.one_of(ops)

    return s.recursive(leaf, extend, max_leaves=depth + 2)


def _full(expr: Expr, full: tuple, op: str) -> Expr:
    """`expr`, joined with a full-shape leaf when it reads only broadcast ones (its shape must be the tile's)."""
    return expr if leaves(expr) & set(full) else Binary(op, Leaf(full[0]), expr)


def programs(kinds: tuple = KINDS, dtypes: tuple = (torch.float32, torch.float32, torch.bfloat16, torch.int32),
             max_side: int = 40):
    """TilePrograms of the given kinds (matrix products are drawn for floating dtypes only)."""
    s = _strategies()

    @s.composite
    def draw_program(draw):
        kind = draw(s.sampled_from(kinds))
        floats = tuple(d for d in dtypes if d.is_floating_point)
        dtype = draw(s.sampled_from(floats if kind == "matmul" else dtypes))
        m, n = draw(sizes(1, max_side)), draw(sizes(1, max_side))
        seed, x_transposed = draw(s.integers(0, 2 ** 31 - 1)), draw(s.booleans())
        inputs_ = ("x_t", "y_t", "r_t", "c_t", "i_t")
        if kind == "matmul":
            epi = draw(expressions(dtype, ("acc_t", "bias_t"), ("bias_t",), 2))
            return TileProgram(kind, dtype, m, n, body=Leaf("x_t"), k=draw(sizes(1, max_side)), seed=seed, x_transposed=x_transposed,
                               pre=draw(expressions(dtype, ("x_t",), ("x_t",), 2)), after=_full(epi, ("acc_t",), "add"),
                               matmul_form=draw(s.sampled_from(["addmm", "matmul"])))
        gather = draw(s.none() | sizes(1, max_side))
        body = _full(draw(expressions(dtype, inputs_, inputs_)), ("x_t", "y_t"), "add")
        common = dict(body=body, gather_rows=gather, seed=seed, x_transposed=x_transposed,
                      index_dtype=draw(s.sampled_from([torch.int64, torch.int32])))
        if kind == "pointwise":
            return TileProgram(kind, dtype, m, n, **common)
        if kind in ("row_reduce", "col_reduce"):
            reduction = draw(s.sampled_from(REDUCTIONS if dtype.is_floating_point else REDUCTIONS[:3]))
            after = draw(expressions(dtype, ("row", "s_b") + inputs_, inputs_, 2))
            return TileProgram(kind, dtype, m, n, reductions=(reduction,), after=_full(after, ("row", "x_t", "y_t"), "sub"),
                               **common)
        reductions = tuple(draw(s.lists(s.sampled_from(REDUCTIONS), min_size=1, max_size=2)))
        after = draw(expressions(torch.float32, ("acc",), (), 2))
        return TileProgram(kind, dtype, m, n, reductions=reductions, after=after, **common)

    return draw_program()
