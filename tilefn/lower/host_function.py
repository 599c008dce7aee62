"""The host function of a lowered Program: its host equations as Python, the kernel launch, the outputs."""
from __future__ import annotations

import math

import torch

from ..trace.arguments import path_source
from ..trace.dynamic import symbols_of
from ..trace.ir import Lit, Program, Var
from ..trace.naming import op_name, operator_text
from ..trace.primitives import kernel_p
from ..trace.sizes import SizeExpr, is_symbolic
from ..trace.types import HostType
from .aliasing import overlap_guards, refuse_overlap
from .codegen import KernelSource


def _literal(value, consts) -> str:
    """Source text for a host argument; objects without a literal form go into `consts`."""
    if isinstance(value, (bool, int, float, str, type(None))):
        return repr(value) if not (isinstance(value, float) and not math.isfinite(value)) else f'float("{value}")'
    if isinstance(value, SizeExpr):  # evaluated from the call's sizes (`input_sizes` binds them)
        return str(value)
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, torch.device):
        return f"torch.device({str(value)!r})"
    if isinstance(value, torch.Size):
        return "[" + ", ".join(map(str, value)) + "]"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_literal(v, consts) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    name = f"_const{len(consts)}"
    consts[name] = value
    return name


def _fresh(names, base: str) -> str:
    """`base`, or `base_1`, ...: a name no Var of the host function takes (reserved in the namer)."""
    name, suffix = base, 1
    while name in names.used:
        name, suffix = f"{base}_{suffix}", suffix + 1
    names.used.add(name)
    return name


def input_sizes(program: Program) -> list:
    """The SizeVars of the program's inputs (static_shapes=False), each once, in order."""
    found = {}
    for v in program.inputs:
        if isinstance(v.type, HostType):
            found.update((s.name, s) for s in symbols_of(v.type))
    return list(found.values())


def _operand(name: str, var, suffix: str) -> str:
    """A launch argument: a tensor (its address with `suffix`), a runtime float, a runtime bool as an int."""
    if isinstance(var.type, HostType):
        return name + suffix
    return f"int({name})" if var.type.kind is bool else name


def size_reads(program: Program, names) -> tuple[str, ...]:
    """The lines that read a static_shapes=False call's sizes and strides: each tensor's shape in one read
    where all of its sizes are symbols (as the dynamic guard reads them, under the same names)."""
    by_input: dict = {}
    for sym in input_sizes(program):
        by_input.setdefault(sym.input, []).append(sym)
    lines = []
    for position, syms in by_input.items():
        tensor, sizes = names(program.inputs[position]), [s for s in syms if s.kind == "size"]
        if [s.dim for s in sizes] == list(range(len(program.inputs[position].type.shape))):
            lines.append(f"{', '.join(s.name for s in sizes)}{',' if len(sizes) == 1 else ''} = {tensor}.shape")
        else:
            lines += [f"{s.name} = {tensor}.size({s.dim})" for s in sizes]
        lines += [f"{s.name} = {tensor}.stride({s.dim})" for s in syms if s.kind == "stride"]
    return tuple(lines)


def write_host(program: Program, kernel: KernelSource | None, names, pointers: bool,
               spells=None) -> tuple[str, dict, tuple]:
    """The launcher: host equations, the launch, the outputs. Returns (source, its globals, its `size_reads`).
    `spells`: per launcher name (`_launch`, `_launch0`, ...) how to spell its C launch in place of calling it
    (`triton_compat.cuda_launcher`'s `spell`)."""
    consts: dict = {}
    # every parameter of the kernel, in order: the jit passes the call's flat arguments (trace/binding.py)
    whole = {path[0]: var for var, path in zip(program.inputs, program.input_paths) if len(path) == 1}
    params = [names(whole[i]) if i in whole else None for i in range(len(program.params))]
    params = [p if p is not None else _fresh(names, f"_{name}") for p, name in zip(params, program.params)]
    lines = [f"def {program.name}({', '.join(params)}):"]
    lines += [f"    {names(var)} = {path_source(params[path[0]], path[1:])}"  # a tensor in a list, a function...
              for var, path in zip(program.inputs, program.input_paths) if len(path) > 1]
    reads = size_reads(program, names)
    lines += [f"    {line}" for line in reads]
    lines += overlap_guards(program, names)
    if any("_refuse_overlap" in line for line in lines):
        consts["_refuse_overlap"] = refuse_overlap
    captured = dict(program.captured)
    for var, tensor in program.consts:
        if var in captured:  # a global or closure cell: read by reference at each call
            consts[f"_read_{names(var)}"] = captured[var].read
            lines.append(f"    {names(var)} = _read_{names(var)}()")
        else:
            consts[names(var)] = tensor
    for eqn in program.eqns:
        if eqn.prim is kernel_p:
            suffix = ".data_ptr()" if pointers else ""  # raw addresses skip the launcher's checks
            arguments = [_operand(names(v), v, suffix) for v in kernel.operands] + [s.name for s in kernel.sizes]
            grids = kernel.phase_grids or (kernel.launch_grid or (kernel.grid, 1, 1),)
            for k, grid in enumerate(grids):  # with tl.barrier(): one launch per phase, in order (the stream orders them)
                launch = f"_launch{k}" if kernel.phase_grids else "_launch"
                count = math.prod(grid)
                call = f"{launch}(({', '.join(map(str, grid))}), {', '.join(arguments)})"
                if spells is not None:
                    call, named = spells[launch](launch, [str(g) for g in grid], arguments)
                    consts.update(named)
                if is_symbolic(count):  # computed from the call's sizes; no launch of no programs
                    lines += [f"    if {count} > 0:", f"        {call}"]
                elif count > 0:
                    lines.append(f"    {call}")
            continue
        fn = eqn.params["fn"]
        fn_name = op_name(fn)
        render = lambda x: names(x) if isinstance(x, Var) else _literal(x, consts)  # noqa: E731
        call_args = [render(a) for a in eqn.params["args"]]
        call_args += [f"{k}={render(v)}" for k, v in sorted(eqn.params["kwargs"].items())]
        receiver = eqn.params["args"][0] if eqn.params["args"] else None
        if operator_text(fn, call_args) is not None:  # arithmetic on runtime floats
            call = operator_text(fn, call_args)
        elif getattr(torch, fn_name, None) is fn:
            call = f"torch.{fn_name}({', '.join(call_args)})"
        elif isinstance(receiver, Var) and getattr(torch.Tensor, fn_name, None) is fn:
            call = f"{call_args[0]}.{fn_name}({', '.join(call_args[1:])})"
        else:
            callee = f"_fn{len(consts)}"
            consts[callee] = fn
            call = f"{callee}({', '.join(call_args)})"
        outs = [names(v) for v in eqn.outputs]
        kind = eqn.params["out_kind"]
        if kind == "none":
            lines.append(f"    {call}")
        elif kind in ("tensor", "value"):  # ("value": a runtime scalar, `tilefn.trace.scalars`)
            lines.append(f"    {outs[0]} = {call}")
        else:
            lines.append(f"    {', '.join(outs)}{',' if len(outs) == 1 else ''} = [_r for _r in {call} if isinstance(_r, torch.Tensor)]")

    def ret(o):
        if isinstance(o, tuple):
            return "(" + ", ".join(ret(i) for i in o) + ("," if len(o) == 1 else "") + ")"
        if isinstance(o, Lit):
            return repr(o.value)
        return "None" if o is None else names(o)

    lines.append(f"    return {ret(program.outputs)}")
    return "\n".join(lines) + "\n", consts, reads
