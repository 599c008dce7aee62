"""The readable, stable text form of a Program (like `jax.make_jaxpr`)."""
from __future__ import annotations

import torch

from ..rule_table import RuleTable
from . import primitives as p
from .indexing import OPERAND_KINDS
from .ir import TEXT_FORM, Lit, Var
from .naming import op_name, operator_text
from .types import TileDim, TileType, dtype_name

PRINTERS = RuleTable("printer")  # Primitive -> (eqn, namer, blocks, indent, lhs) -> lines; else `_op_lines`


class Namer:
    """Gives each Var a unique, stable name: the user's name when known, else v0, v1, ..."""

    def __init__(self, hints):
        self.hints, self.names, self.used, self.count = hints, {}, set(), 0
        self.dims: dict[TileDim, str] = {}

    def __call__(self, var) -> str:
        if isinstance(var, Lit):
            return repr(var.value)
        if var not in self.names:
            base = self.hints.get(var)
            if base is None:
                base, self.count = f"v{self.count}", self.count + 1
            name, suffix = base, 1
            while name in self.used:
                name, suffix = f"{base}_{suffix}", suffix + 1
            self.used.add(name)
            self.names[var] = name
            if isinstance(var.type, TileType):
                self.dims[var.type.dim] = name
        return self.names[var]

    def typed(self, var) -> str:
        return f"{self(var)}: {var.type.render(self.dims)}"


def _value(x, namer) -> str:
    if isinstance(x, Var):
        return namer(x)
    if isinstance(x, torch.dtype):
        return str(x)
    if isinstance(x, torch.device):
        return repr(str(x))
    if isinstance(x, (list, tuple)):
        inner = ", ".join(_value(i, namer) for i in x)
        return f"[{inner}]" if isinstance(x, list) else f"({inner}{',' if len(x) == 1 else ''})"
    return repr(x)


def _host_call(eqn, namer) -> str:
    fn, args, kwargs = eqn.params["fn"], list(eqn.params["args"]), dict(eqn.params["kwargs"])
    name = op_name(fn)
    rendered = [_value(a, namer) for a in args] + [f"{k}={_value(v, namer)}" for k, v in sorted(kwargs.items())]
    if getattr(fn, "printed_as_call", False):  # a function of tilefn's own (tilefn.autodiff's pullbacks)
        return f"{name}({', '.join(rendered)})"
    if operator_text(fn, rendered) is not None:  # arithmetic on runtime floats (tilefn.trace.scalars)
        return operator_text(fn, rendered)
    if getattr(torch, name, None) is fn or not args or not isinstance(args[0], Var):
        return f"torch.{name}({', '.join(rendered)})"
    return f"{rendered[0]}.{name}({', '.join(rendered[1:])})"


def _index(entries, atoms, namer) -> str:
    atoms, parts = list(atoms), []
    for entry in entries:
        kind = entry[0]
        if kind in OPERAND_KINDS:
            parts.append(namer(atoms.pop(0)))
        elif kind == "slice":
            parts.append(f"{entry[1]}:{entry[2]}")
        elif kind == "int":
            parts.append(str(entry[1]))
        else:
            parts.append("None")
    return "[" + ", ".join(parts) + "]"


def _params(params, namer) -> str:
    items = []
    for key, value in sorted(params.items()):
        if isinstance(value, torch.dtype):
            value = dtype_name(value)
        elif isinstance(value, tuple):
            value = "(" + ", ".join(namer.dims.get(v, str(v)) for v in value) + ")"
        items.append(f"{key}={value}")
    return "[" + ", ".join(items) + "]" if items else ""


def _loop_header(eqn, namer, blocks) -> str:
    region, n_dims = eqn.params["region"], len(eqn.params["dims"])
    parts = []
    for i, (kind, dim) in enumerate(eqn.params["dims"]):
        begin, end = (namer(a) for a in eqn.inputs[2 * i:2 * i + 2])
        handle = namer(region.params[i])
        if kind == "grid":
            parts.append(f"{handle} in grid({begin}, {end})")
        else:
            fixed = blocks[dim.block].fixed if dim.block < len(blocks) else None
            block = f"B{dim.block}" + (f"={fixed}" if fixed else "")
            parts.append(f"{handle} in tile({begin}, {end}, block={block})")
    carries = [f"{namer(p)} = {namer(i)}" for p, i in zip(region.params[n_dims:], eqn.inputs[2 * n_dims:])]
    head = ("grid " if eqn.params["grid"] else "for ") + ", ".join(parts)
    return head + (f" carry({', '.join(carries)})" if carries else "") + ":"


def _eqn_lines(eqn, namer, blocks, indent) -> list[str]:
    outs = ", ".join(namer.typed(v) for v in eqn.outputs)
    lhs = f"{outs} = " if outs else ""
    return PRINTERS.get(eqn.prim, _op_lines)(eqn, namer, blocks, indent, lhs)


@PRINTERS.register(p.host_p)
def _host_lines(eqn, namer, blocks, indent, lhs) -> list[str]:
    return [f"{'  ' * indent}{lhs}{_host_call(eqn, namer)}"]


@PRINTERS.register(p.kernel_p)
def _kernel_lines(eqn, namer, blocks, indent, lhs) -> list[str]:
    lines = [f"{'  ' * indent}kernel({', '.join(namer(v) for v in eqn.inputs)}):"]
    for inner in eqn.params["region"].eqns:
        lines += _eqn_lines(inner, namer, blocks, indent + 1)
    return lines


@PRINTERS.register(p.loop_p)
def _loop_lines(eqn, namer, blocks, indent, lhs) -> list[str]:
    pad, region = "  " * indent, eqn.params["region"]
    for param in region.params:
        namer(param)
    lines = [f"{pad}{lhs}{_loop_header(eqn, namer, blocks)}"]
    for inner in region.eqns:
        lines += _eqn_lines(inner, namer, blocks, indent + 1)
    if region.results:
        lines.append(f"{pad}  yield {', '.join(namer(r) for r in region.results)}")
    return lines


def _block_lines(region, namer, blocks, indent) -> list[str]:
    lines = []
    for inner in region.eqns:
        lines += _eqn_lines(inner, namer, blocks, indent + 1)
    if region.results:
        lines.append(f"{'  ' * (indent + 1)}yield {', '.join(namer(r) for r in region.results)}")
    return lines


@PRINTERS.register(p.cond_p)
def _cond_lines(eqn, namer, blocks, indent, lhs) -> list[str]:
    pad = "  " * indent
    lines = [f"{pad}{lhs}cond {namer(eqn.inputs[0])}:"] + _block_lines(eqn.params["region"], namer, blocks, indent)
    return lines + [f"{pad}else:"] + _block_lines(eqn.params["orelse"], namer, blocks, indent)


@PRINTERS.register(p.while_p)
def _while_lines(eqn, namer, blocks, indent, lhs) -> list[str]:
    region = eqn.params["region"]
    carries = ", ".join(f"{namer(q)} = {namer(i)}" for q, i in zip(region.params, eqn.inputs[1:]))
    head = f"{'  ' * indent}{lhs}while {namer(eqn.inputs[0])}" + (f" carry({carries})" if carries else "") + ":"
    return [head] + _block_lines(region, namer, blocks, indent)


def _access(eqn, namer):
    """The indexed tensor of a load or store as text, and the names of its remaining operands."""
    n_index = sum(1 for e in eqn.params["index"] if e[0] in OPERAND_KINDS)
    target = namer(eqn.inputs[0]) + _index(eqn.params["index"], eqn.inputs[1:1 + n_index], namer)
    return target, [namer(a) for a in eqn.inputs[1 + n_index:]]


@PRINTERS.register(p.load_p)
def _load_lines(eqn, namer, blocks, indent, lhs) -> list[str]:
    target, rest = _access(eqn, namer)
    mask = f" mask={rest[0]}" if rest else ""
    return [f"{'  ' * indent}{lhs}load {target}{mask}"]


@PRINTERS.register(p.store_p)
def _store_lines(eqn, namer, blocks, indent, lhs) -> list[str]:
    target, rest = _access(eqn, namer)
    value = rest.pop(0)
    mask = f" mask={rest[0]}" if rest else ""
    return [f"{'  ' * indent}store {target} <- {value}{mask}"]


@PRINTERS.register(*p.ATOMIC)
def _atomic_lines(eqn, namer, blocks, indent, lhs) -> list[str]:
    target, values = _access(eqn, namer)
    params = eqn.params
    mask = f" mask={values.pop()}" if params["masked"] else ""
    return [f"{'  ' * indent}{lhs}{eqn.prim}[sem={params['sem']}, scope={params['scope']}] {target} <- "
            f"{', '.join(values)}{mask}"]


@PRINTERS.register(*p.SIGNALS)
def _signal_lines(eqn, namer, blocks, indent, lhs) -> list[str]:
    """`old = signal[op=..., signal=1, sem=..., scope=...] pad[index]`; a wait has no lhs."""
    target, _ = _access(eqn, namer)
    shown = {k: v for k, v in eqn.params.items()
             if k not in ("shape", "index", "masked") and v is not None and v is not False}
    return [f"{'  ' * indent}{lhs}{eqn.prim}{_params(shown, namer)} {target}"]


def _op_lines(eqn, namer, blocks, indent, lhs, shown=None) -> list[str]:
    """`outs = prim[params] inputs`, with the params `shown` picks (default: all but shape and dtype)."""
    params = shown(eqn.params) if shown else {k: v for k, v in eqn.params.items() if k not in ("shape", "dtype")}
    args = ", ".join(namer(a) for a in eqn.inputs)
    return [f"{'  ' * indent}{lhs}{eqn.prim}{_params(params, namer)} {args}".rstrip()]


def _showing(shown):
    """A printer of the generic form that shows the params `shown(params)` returns."""
    return lambda eqn, namer, blocks, indent, lhs: _op_lines(eqn, namer, blocks, indent, lhs, shown)


@PRINTERS.register(p.associative_scan_p, p.combine_reduce_p)
def _combine_lines(eqn, namer, blocks, indent, lhs) -> list[str]:
    """The generic form, then the combine function's region: `combine(left..., right...):` and its body."""
    pad, region = "  " * indent, eqn.params["combine"]
    shown = {k: v for k, v in eqn.params.items() if k != "combine" and not (k == "other" and v is None)}
    lines = _op_lines(eqn, namer, blocks, indent, lhs, lambda params: shown)
    lines[-1] += f" combine({', '.join(namer.typed(v) for v in region.params)}):"
    for inner in region.eqns:
        lines += _eqn_lines(inner, namer, blocks, indent + 2)
    lines.append(f"{pad}    yield {', '.join(namer(r) for r in region.results)}")
    return lines


PRINTERS.add(p.reshape_p, _showing(dict))
PRINTERS.add(p.broadcast_to_p, _showing(dict))
PRINTERS.add(p.dot_p, _showing(lambda params: {k: v for k, v in params.items()
                                                if k != "out_dtype" and (k, v) != ("precision", "ieee")}))
PRINTERS.add(p.convert_p, _showing(lambda params: {"dtype": params["dtype"]}))


def _returned(outs, namer) -> str:
    """A Program's outputs as its return line writes them (a Var, None, or a nested tuple)."""
    if isinstance(outs, tuple):
        return "(" + ", ".join(_returned(o, namer) for o in outs) + ")"
    return "None" if outs is None else namer(outs)


def print_program(program) -> str:
    namer = Namer(dict(program.hints))
    args = ", ".join(namer.typed(v) for v in program.inputs)
    lines = [f"def {program.name}({args}):"]
    for var, _ in program.consts:
        lines.append(f"  # captured: {namer.typed(var)}")
    for block in program.blocks:
        extent = "dynamic" if block.extent is None else block.extent
        fixed = f", fixed at {block.fixed}" if block.fixed else ""
        host = f", host code computed with {block.host}" if block.host else ""
        lines.append(f"  # B{block.id}: block size over extent {extent}{fixed}{host}")
    for g in (*program.guards, *program.value_reads):
        lines.append(f"  # guard: {g}")
    for t in program.tunables:
        lines.append(f"  # tunable {t.name} = {t.value!r} of {list(t.choices)!r}, default {t.default!r}")
    for eqn in program.eqns:
        lines += _eqn_lines(eqn, namer, program.blocks, 1)
    lines.append(f"  return {_returned(program.outputs, namer)}")
    return "\n".join(lines)


TEXT_FORM.add("program", print_program)
