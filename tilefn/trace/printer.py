"""The readable, stable text form of a Program (like `jax.make_jaxpr`)."""
from __future__ import annotations

import torch

from .dispatch import op_name
from .ir import Lit, Var
from .types import TileDim, TileType, dtype_name


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
    if getattr(torch, name, None) is fn or not args or not isinstance(args[0], Var):
        return f"torch.{name}({', '.join(rendered)})"
    return f"{rendered[0]}.{name}({', '.join(rendered[1:])})"


def _index(entries, atoms, namer) -> str:
    atoms, parts = list(atoms), []
    for entry in entries:
        kind = entry[0]
        if kind in ("tile", "scalar", "gather"):
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
    pad = "  " * indent
    outs = ", ".join(namer.typed(v) for v in eqn.outputs)
    lhs = f"{outs} = " if outs else ""
    if eqn.prim == "host":
        return [f"{pad}{lhs}{_host_call(eqn, namer)}"]
    if eqn.prim == "kernel":
        lines = [f"{pad}kernel({', '.join(namer(v) for v in eqn.inputs)}):"]
        for inner in eqn.params["region"].eqns:
            lines += _eqn_lines(inner, namer, blocks, indent + 1)
        return lines
    if eqn.prim == "loop":
        region = eqn.params["region"]
        for p in region.params:
            namer(p)
        lines = [f"{pad}{lhs}{_loop_header(eqn, namer, blocks)}"]
        for inner in region.eqns:
            lines += _eqn_lines(inner, namer, blocks, indent + 1)
        if region.results:
            lines.append(f"{pad}  yield {', '.join(namer(r) for r in region.results)}")
        return lines
    if eqn.prim in ("load", "store"):
        n_index = sum(1 for e in eqn.params["index"] if e[0] in ("tile", "scalar", "gather"))
        target = namer(eqn.inputs[0]) + _index(eqn.params["index"], eqn.inputs[1:1 + n_index], namer)
        rest = [namer(a) for a in eqn.inputs[1 + n_index:]]
        if eqn.prim == "store":
            value = rest.pop(0)
            mask = f" mask={rest[0]}" if rest else ""
            return [f"{pad}store {target} <- {value}{mask}"]
        mask = f" mask={rest[0]}" if rest else ""
        return [f"{pad}{lhs}load {target}{mask}"]
    params = {k: v for k, v in eqn.params.items() if k not in ("shape", "dtype") or eqn.prim in ("full", "iota", "reshape", "broadcast_to")}
    params.pop("out_dtype", None) if eqn.prim == "dot" else None
    if eqn.prim == "convert":
        params = {"dtype": eqn.params["dtype"]}
    if eqn.prim in ("full", "iota"):
        params.pop("dtype", None)
        params.pop("shape", None)
    args = ", ".join(namer(a) for a in eqn.inputs)
    return [f"{pad}{lhs}{eqn.prim}{_params(params, namer)} {args}".rstrip()]


def print_program(program) -> str:
    namer = Namer(dict(program.hints))
    args = ", ".join(namer.typed(v) for v in program.inputs)
    lines = [f"def {program.name}({args}):"]
    for var, _ in program.consts:
        lines.append(f"  # captured: {namer.typed(var)}")
    for block in program.blocks:
        extent = "dynamic" if block.extent is None else block.extent
        fixed = f", fixed at {block.fixed}" if block.fixed else ""
        lines.append(f"  # B{block.id}: block size over extent {extent}{fixed}")
    for t in program.tunables:
        lines.append(f"  # tunable {t.name} = {t.value!r} of {list(t.choices)!r}, default {t.default!r}")
    for eqn in program.eqns:
        lines += _eqn_lines(eqn, namer, program.blocks, 1)
    outs = program.outputs
    if isinstance(outs, tuple):
        ret = "(" + ", ".join(namer(o) if o is not None else "None" for o in outs) + ")"
    else:
        ret = "None" if outs is None else namer(outs)
    lines.append(f"  return {ret}")
    return "\n".join(lines)
