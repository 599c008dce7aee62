"""Program + Config -> Triton source: the kernel (grid, loops, body) and its host launcher."""
from __future__ import annotations

import math

import attrs
import torch

from ..config import Config
from ..errors import TilefnError
from ..trace.dispatch import op_name
from ..trace.ir import Lit, Program, Var
from ..trace.types import HostType
from .emit import TILE_PREFIXES, Emitter
from .masks import analyze_masks
from .rules import lower_eqn

KERNEL_HELPERS = {
    "_mul_combine": "@triton.jit\ndef _mul_combine(a, b):\n    return a * b\n",
    "_max_nan_combine": "@triton.jit\ndef _max_nan_combine(a, b):\n"
                        "    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)\n",
    "_min_nan_combine": "@triton.jit\ndef _min_nan_combine(a, b):\n"
                        "    return tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL)\n",
}


@attrs.frozen
class KernelSource:
    """Generated code: the Triton kernel, its launch parameters and the host function around it."""

    kernel_name: str
    kernel: str  # Triton module source
    operands: tuple  # host Vars passed as pointers, in order
    constexprs: dict
    grid: int
    num_warps: int
    num_stages: int


def _static(atom):
    return atom.value if isinstance(atom, Lit) else None


class KernelWriter:
    """Walks the kernel region and writes Triton source."""

    def __init__(self, program: Program, config: Config, interpret: bool):
        self.program, self.config = program, config
        self.em = Emitter(program, config, analyze_masks(program), interpret)

    def write(self) -> KernelSource:
        em, kernel = self.em, self.program.kernel
        operands = tuple(kernel.inputs)
        params = [em(v) for v in operands]
        em.depth = 1
        loops = list(kernel.params["region"].eqns)
        counts = [self._tile_count(loop) for loop in loops]
        em.emit("pid = tl.program_id(0)")
        start = 0
        for loop, count in zip(loops, counts):
            if len(loops) > 1:
                em.emit(f"if pid >= {start} and pid < {start + count}:")
                em.depth += 1
            self._grid_loop(loop, "pid" if start == 0 else f"(pid - {start})")
            if len(loops) > 1:
                em.depth -= 1
            start += count
        blocks = {name: em.block(b) for b, name in em.block_names.items()}
        signature = ", ".join(params + [f"{name}: tl.constexpr" for name in blocks])
        name = f"_{self.program.name}_kernel"
        helpers = "".join(KERNEL_HELPERS[h] + "\n\n" for h in sorted(em.needs_helpers))
        source = ("import triton\nimport triton.language as tl\n\n\n" + helpers +
                  f"@triton.jit\ndef {name}({signature}):\n" + "\n".join(em.lines) + "\n")
        return KernelSource(name, source, operands, blocks, max(sum(counts), 0),
                            self.config.num_warps or 4, self.config.num_stages or 3)

    def _tile_count(self, loop) -> int:
        count = 1
        for i, (kind, dim) in enumerate(loop.params["dims"]):
            begin, end = _static(loop.inputs[2 * i]), _static(loop.inputs[2 * i + 1])
            block = 1 if kind == "grid" else self.em.block(dim.block)
            count *= max(math.ceil((end - begin) / block), 0)
        return count

    def _name_handles(self, loop):
        em, region = self.em, loop.params["region"]
        names = []
        for i, (kind, dim) in enumerate(loop.params["dims"]):
            handle = region.params[i]
            base = em.fresh(em.hints.get(handle, "t" if kind == "tile" else "i"),
                            TILE_PREFIXES if kind == "tile" else ())
            if kind == "tile":
                em.tiles[dim.tile] = base
                em.bind(handle, base)
                em.block_name(dim.block, base)
                em.tile_ends[dim.tile] = em(loop.inputs[2 * i + 1])
            names.append(base)
        return names

    def _tile_lanes(self, name, dim, end):
        em = self.em
        em.emit(f"offs_{name} = off_{name} + tl.arange(0, {em.dim_expr(dim)})")
        if em.masks.needs_mask(dim, self.config):
            em.emit(f"mask_{name} = offs_{name} < {end}")

    def _grid_loop(self, loop, pid):
        em, region = self.em, loop.params["region"]
        names = self._name_handles(loop)
        dims = loop.params["dims"]
        counts = []
        for i, (kind, dim) in enumerate(dims):
            begin, end = _static(loop.inputs[2 * i]), _static(loop.inputs[2 * i + 1])
            block = 1 if kind == "grid" else em.block(dim.block)
            counts.append(max(math.ceil((end - begin) / block), 1))
        rest = pid
        for i in reversed(range(len(dims))):
            kind, dim = dims[i]
            begin = em(loop.inputs[2 * i])
            index = rest if i == 0 else f"{rest} % {counts[i]}"
            if kind == "grid":
                em.emit(f"{names[i]} = {begin} + {index}" if begin != "0" else f"{names[i]} = {index}")
                em.bind(region.params[i], names[i])
            else:
                block = em.dim_expr(dim)
                em.emit(f"off_{names[i]} = {begin} + ({index}) * {block}" if begin != "0" else f"off_{names[i]} = ({index}) * {block}")
                self._tile_lanes(names[i], dim, em(loop.inputs[2 * i + 1]))
            if i > 0:
                rest = f"({rest} // {counts[i]})" if rest == pid else f"({rest} // {counts[i]})"
        self._body(region)

    def _body(self, region):
        for eqn in region.eqns:
            if eqn.prim == "loop":
                self._inner_loop(eqn)
            else:
                lower_eqn(self.em, eqn)

    def _inner_loop(self, loop):
        em, region = self.em, loop.params["region"]
        dims = loop.params["dims"]
        n = len(dims)
        carry_names = []
        for param, init, out in zip(region.params[n:], loop.inputs[2 * n:], loop.outputs):
            name = em.fresh(em.hints.get(out, "carry"))
            em.emit(f"{name} = {em(init)}")
            em.bind(param, name)
            em.bind(out, name)
            carry_names.append(name)
        names = self._name_handles(loop)
        depth = em.depth
        for i, (kind, dim) in enumerate(dims):
            begin, end = em(loop.inputs[2 * i]), em(loop.inputs[2 * i + 1])
            if kind == "grid":
                em.emit(f"for {names[i]} in tl.range({begin}, {end}):")
                em.bind(region.params[i], names[i])
                em.depth += 1
                continue
            em.emit(f"for off_{names[i]} in tl.range({begin}, {end}, {em.dim_expr(dim)}):")
            em.depth += 1
            self._tile_lanes(names[i], dim, end)
        self._body(region)
        results = [em(r) for r in region.results]
        changed = [(c, r) for c, r in zip(carry_names, results) if c != r]
        if len(changed) > 1 and set(c for c, _ in changed) & set(r for _, r in changed):
            em.emit(", ".join(c for c, _ in changed) + " = " + ", ".join(r for _, r in changed))
        else:
            for c, r in changed:
                em.emit(f"{c} = {r}")
        em.depth = depth


def write_kernel(program: Program, config: Config, interpret: bool) -> KernelSource | None:
    if program.kernel is None:
        return None
    _check_block_sizes(program, config)
    return KernelWriter(program, config, interpret).write()


def _check_block_sizes(program: Program, config: Config) -> None:
    """Every block size is a positive power of two (Triton's tl.arange needs one)."""
    for block in program.blocks:
        size = config.block_sizes[block.id]
        if not (isinstance(size, int) and size > 0 and size & (size - 1) == 0):
            where = "tl.tile(..., block_size=...)" if block.fixed else f"Config block_sizes[{block.id}]"
            raise TilefnError(f"block size {size!r} ({where}) must be a positive power of two")


# --- the host function -------------------------------------------------------------------
def _literal(value, consts) -> str:
    """Source text for a host argument; objects without a literal form go into `consts`."""
    if isinstance(value, (bool, int, float, str, type(None))):
        return repr(value) if not (isinstance(value, float) and not math.isfinite(value)) else f'float("{value}")'
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


def write_host(program: Program, kernel: KernelSource | None, names, pointers: bool) -> tuple[str, dict]:
    """The launcher: host equations, the launch, the outputs. Returns (source, its globals)."""
    consts: dict = {}
    # every argument of the kernel, in order, so the jit can pass its own *args straight through
    args = ", ".join(names(var) if var is not None else f"_{name}=None" for name, var in program.params)
    lines = [f"def {program.name}({args}):"]
    for var, tensor in program.consts:
        consts[names(var)] = tensor
    for eqn in program.eqns:
        if eqn.prim == "kernel":
            if kernel.grid > 0:
                suffix = ".data_ptr()" if pointers else ""  # raw addresses skip the launcher's checks
                operands = ", ".join(names(v) + suffix for v in kernel.operands)
                lines.append(f"    _launch(({kernel.grid}, 1, 1), {operands})")
            continue
        fn = eqn.params["fn"]
        fn_name = op_name(fn)
        render = lambda x: names(x) if isinstance(x, Var) else _literal(x, consts)  # noqa: E731
        call_args = [render(a) for a in eqn.params["args"]]
        call_args += [f"{k}={render(v)}" for k, v in sorted(eqn.params["kwargs"].items())]
        receiver = eqn.params["args"][0] if eqn.params["args"] else None
        if getattr(torch, fn_name, None) is fn:
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
        elif kind == "tensor":
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
    return "\n".join(lines) + "\n", consts


__all__ = ["write_kernel", "write_host", "KernelSource", "HostType", "TilefnError"]
