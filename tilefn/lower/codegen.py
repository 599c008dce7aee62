"""Program + Config -> Triton source: the kernel (grid, loops, body) and its host launcher."""
from __future__ import annotations

import functools
import math

import attrs
import torch

from ..config import Config
from ..errors import TilefnError
from ..trace.ir import Lit, Program, walk_eqns
from ..trace.primitives import cond_p, dot_p, loop_p, while_p
from ..trace.queries import phase_of
from ..trace.dynamic import symbols_of
from ..trace.scalars import DEVICE_DTYPES, is_runtime_scalar
from ..trace.sizes import SizeExpr, cdiv, is_symbolic, smin
from ..trace.types import HostType
from . import backend, float8
from .config_check import PERSISTENT
from .control import emit_cond, emit_while
from .dots import squeezed_carries
from .emit import TILE_PREFIXES, Emitter, tl_dtype
from .masks import analyze_masks
from .rules import lower_eqn
from .sites import Sites

KERNEL_HELPERS = {
    "_mul_combine": "@triton.jit\ndef _mul_combine(a, b):\n    return a * b\n",
    "_max_nan_combine": "@triton.jit\ndef _max_nan_combine(a, b):\n"
                        "    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)\n",
    "_min_nan_combine": "@triton.jit\ndef _min_nan_combine(a, b):\n"
                        "    return tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL)\n",
    # float32 -> bfloat16 rounded to nearest even on the bits (Triton's CPU interpreter truncates)
    "_bf16_rtne": "@triton.jit\ndef _bf16_rtne(x):\n"
                  "    bits = x.to(tl.uint32, bitcast=True)\n"
                  "    top = tl.where(x != x, 0x7FC0, (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16)\n"
                  "    return top.to(tl.uint16).to(tl.bfloat16, bitcast=True)\n",
    **float8.HELPERS,
}


@attrs.frozen
class KernelSource:
    """Generated code: the Triton kernel, its launch parameters and the host function around it."""

    kernel_name: str
    kernel: str  # Triton module source
    operands: tuple  # host Vars passed as pointers, in order
    constexprs: dict
    grid: object  # programs launched (the product of launch_grid): an int, or a SizeExpr (static_shapes=False)
    num_warps: int
    num_stages: int
    launch_grid: tuple = ()  # (g0, g1, g2); () means (grid, 1, 1)
    phase_grids: tuple = ()  # with tl.barrier(): one (g0, 1, 1) per phase, launched in order with PHASE=k
    sizes: tuple = ()  # the SizeVars passed after the pointers (runtime ints; static_shapes=False)


def _static(atom):
    return atom.value if isinstance(atom, Lit) else None


def _past_int32(end, block: int) -> bool:
    """Whether a grid dimension's offsets (up to `end` plus one block) can exceed int32 (a symbolic end:
    when the signature says some tensor's offsets may, `tilefn.trace.dynamic`)."""
    end = _static(end)
    if is_symbolic(end):
        return any(s.wide for s in symbols_of(end))
    return end is None or end + block > 2 ** 31 - 1


class KernelWriter:
    """Walks the kernel region and writes Triton source."""

    def __init__(self, program: Program, config: Config, sites: Sites, interpret: bool):
        self.program, self.config = program, config
        self.em = Emitter(program, config, sites, analyze_masks(program), interpret)

    def write(self) -> KernelSource:
        em, kernel = self.em, self.program.kernel
        operands = tuple(kernel.inputs)
        sizes = kernel_sizes(kernel)
        em.used.update(s.name for s in sizes)  # (the symbols' own names: the kernel's int parameters)
        params = [em(v) for v in operands] + [s.name for s in sizes]
        for var in operands:  # a runtime scalar: a 0-d value of its kind's dtype (float64), cast at each use
            if is_runtime_scalar(var):
                value = em.fresh(em(var) + "_value")
                em.prologue.append(f"{value} = tl.full((), {em(var)}, {tl_dtype(DEVICE_DTYPES[var.type.kind])})")
                em.bind(var, value)
        em.depth = 1
        loops = list(kernel.params["region"].eqns)
        self._check_pid_type(loops)
        self.knobs = {id(loop): (self._loop_order(loop), em.knob("l2_groupings", loop) or 1)
                      for loop in loops if len(loop.params["dims"]) > 1}
        phases = _phases(loops)
        phase_grids = ()
        if self.config.pid_type == "xyz" and loops:
            launch_grid = self._xyz_grid(loops[0])
        elif len(phases) == 1:
            launch_grid = (self._flat_sections(loops), 1, 1)
        else:  # one launch per phase, the same kernel specialised on PHASE
            for k, phase in enumerate(phases):
                em.emit(f"if PHASE == {k}:")
                em.depth += 1
                phase_grids += ((self._flat_sections(phase), 1, 1),)
                em.depth -= 1
            launch_grid = phase_grids[0]
        blocks = {name: em.block(b) for b, name in em.block_names.items()}
        phase_param = ["PHASE: tl.constexpr"] if phase_grids else []
        signature = ", ".join(params + [f"{name}: tl.constexpr" for name in blocks] + phase_param)
        name = f"_{self.program.name}_kernel"
        helpers = "".join(KERNEL_HELPERS[h] + "\n\n" for h in sorted(em.needs_helpers))
        helpers += "".join(source + "\n\n" for source in em.generated_helpers.values())
        source = ("import triton\nimport triton.language as tl\n\n\n" + helpers +
                  f"@triton.jit\ndef {name}({signature}):\n" +
                  "\n".join(["    " + line for line in em.prologue] + em.lines) + "\n")
        return KernelSource(name, source, operands, blocks, math.prod(launch_grid),
                            self.config.num_warps or 4, self.config.num_stages or 3, launch_grid, phase_grids, sizes)

    # --- the launch grid and the pid decomposition -----------------------------------------
    def _check_pid_type(self, loops) -> None:
        if self.config.pid_type == "xyz" and loops:
            if len(loops) > 1:
                raise TilefnError(f"Config pid_type='xyz' needs a single top-level tile loop; this kernel has "
                                  f"{len(loops)} (use 'flat' or a persistent pid_type)", loops[1].source)
            if len(loops[0].params["dims"]) > 3:
                raise TilefnError(f"Config pid_type='xyz' maps at most 3 loop dimensions to program_id(0/1/2); "
                                  f"this loop has {len(loops[0].params['dims'])}", loops[0].source)

    def _flat_sections(self, loops) -> int:
        """`pid = tl.program_id(0)` (looped over virtual pids when persistent), one section per loop."""
        em, pid_type, depth = self.em, self.config.pid_type, self.em.depth
        counts = [self._tile_count(loop) for loop in loops]
        total = sum(counts)
        total = total if is_symbolic(total) else max(total, 0)
        em.emit("pid = tl.program_id(0)")
        pid, programs = "pid", total
        if pid_type in PERSISTENT and (is_symbolic(total) or total > 0):
            programs = smin(total, self.num_sms()) if is_symbolic(total) else min(total, self.num_sms())
            pid = em.fresh("virtual_pid")
            options = self._persistent_options()
            if pid_type == "persistent_interleaved":
                em.emit(f"for {pid} in tl.range(pid, {total}, {programs}{options}):")
            else:  # each program takes a contiguous chunk of the tiles
                chunk = cdiv(total, programs)
                end = f"pid * {chunk} + {chunk}"
                if is_symbolic(total) or chunk * programs != total:
                    end = f"tl.minimum({end}, {total})"
                em.emit(f"for {pid} in tl.range(pid * {chunk}, {end}{options}):")
            em.depth += 1
        start = 0
        for loop, count in zip(loops, counts):
            if len(loops) > 1:
                em.emit(f"if {pid} >= {start} and {pid} < {start + count}:")
                em.depth += 1
            self._grid_loop(loop, pid if start == 0 else f"({pid} - {start})")
            if len(loops) > 1:
                em.depth -= 1
            start += count
        em.depth = depth
        return programs

    def _persistent_options(self) -> str:
        """The persistent loop's `tl.range` keywords (`Config.persistent_flatten` / `_warp_specialize`),
        those this Triton accepts."""
        wanted = {"flatten": self.config.persistent_flatten, "warp_specialize": self.config.persistent_warp_specialize}
        accepted = backend.compat().range_kwargs()
        return "".join(f", {name}=True" for name, on in wanted.items() if on and name in accepted)

    def _xyz_grid(self, loop) -> tuple:
        """One program_id axis per loop dimension: the fastest-varying dimension on axis 0."""
        em = self.em
        order, group = self.knobs.get(id(loop), ((0,), 1))
        if group > 1:
            raise TilefnError("Config l2_groupings needs a flat pid (pid_type 'flat' or persistent), "
                              "not pid_type='xyz'", loop.source)
        counts = self._dim_counts(loop, at_least=0)
        axes = list(reversed(order))  # axes[k]: the dimension on program_id(k)
        grid = tuple(counts[axes[k]] if k < len(axes) else 1 for k in range(3))
        if any(not is_symbolic(g) and g > 65535 for g in grid[1:]):
            raise TilefnError(f"Config pid_type='xyz': {max(grid[1:])} programs on program_id(1/2) exceed "
                              f"CUDA's limit of 65535", loop.source)
        indices = {}
        for k, i in enumerate(axes):
            name = "pid" if k == 0 else em.fresh(f"pid_{'xyz'[k]}")
            em.emit(f"{name} = tl.program_id({k})")
            indices[i] = name
        self._grid_loop(loop, None, indices)
        return grid

    @staticmethod
    @functools.cache
    def _cuda_sms(device: str) -> int:
        return torch.cuda.get_device_properties(torch.device(device)).multi_processor_count

    def num_sms(self) -> int:
        """Programs a persistent kernel launches at most: the GPU's SM count (4 on the CPU interpreter)."""
        if self.em.interpret:
            return 4
        device = next((v.type.device for v in self.program.kernel.inputs if isinstance(v.type, HostType)), "cuda")
        if not str(device).startswith("cuda"):  # compiled for a GPU from CPU tensors (compile_for_gpu)
            return OFFLINE_SMS
        return self._cuda_sms(str(device))

    def _loop_order(self, loop) -> tuple:
        order = self.em.knob("loop_orders", loop)
        return tuple(order) if order is not None else tuple(range(len(loop.params["dims"])))

    def _tile_count(self, loop) -> int:
        return math.prod(self._dim_counts(loop, at_least=0))

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
                em.tile_begins[dim.tile] = em(loop.inputs[2 * i])
            names.append(base)
        return names

    def _tile_lanes(self, name, dim, end):
        """The tile's lane offsets from its `off_`, and its mask where its lanes need one (`Emitter.tile_masked`)."""
        em = self.em
        em.emit(f"offs_{name} = off_{name} + tl.arange(0, {em.dim_expr(dim)})")
        if em.tile_masked(dim):
            em.emit(f"mask_{name} = offs_{name} < {end}")

    def _dim_counts(self, loop, at_least=1) -> list:
        counts = []
        for i, (kind, dim) in enumerate(loop.params["dims"]):
            begin, end = _static(loop.inputs[2 * i]), _static(loop.inputs[2 * i + 1])
            block = 1 if kind == "grid" else self.em.block(dim.block)
            if is_symbolic(begin) or is_symbolic(end):  # launched as computed (a size of 0: no programs)
                counts.append(cdiv(end - begin, block))
            else:
                counts.append(max(math.ceil((end - begin) / block), at_least))
        return counts

    def _grid_loop(self, loop, pid, indices=None):
        """Bind the loop's dimensions from `pid` (or from given per-dimension `indices`), then the body."""
        em, region = self.em, loop.params["region"]
        names = self._name_handles(loop)
        dims = loop.params["dims"]
        counts = self._dim_counts(loop)
        if indices is None:
            order, group = self.knobs.get(id(loop), (tuple(range(len(dims))), 1))
            indices = self._decompose(pid, order, group, counts)
        for i, index in indices.items():  # fastest dimension first
            kind, dim = dims[i]
            begin = em(loop.inputs[2 * i])
            if kind == "grid":
                em.emit(f"{names[i]} = {begin} + {index}" if begin != "0" else f"{names[i]} = {index}")
                em.bind(region.params[i], names[i])
            else:
                block = em.dim_expr(dim)
                if _past_int32(loop.inputs[2 * i + 1], em.block(dim.block)):  # pid * block would wrap in int32
                    index = f"({index}).to(tl.int64)"
                em.emit(f"off_{names[i]} = {begin} + ({index}) * {block}" if begin != "0" else f"off_{names[i]} = ({index}) * {block}")
                self._tile_lanes(names[i], dim, em(loop.inputs[2 * i + 1]))
        self._body(region)

    def _decompose(self, pid, order, group, counts) -> dict:
        """Per dimension, the expression of its tile index: `order` lists dims slowest to fastest.

        Returns a dict in emission order (fastest dimension first). With `group` > 1 the two
        fastest dimensions (a, b) are swizzled as in Triton's matmul tutorial: consecutive pids
        walk `group` tiles of a, then the next b, so neighbouring programs share operand tiles in L2.
        """
        em = self.em
        indices, rest = {}, pid
        fast = list(order)
        if group > 1 and len(order) >= 2:
            a, b = order[-2], order[-1]
            fast = list(order[:-2])
            span = counts[a] * counts[b]
            inner = rest
            if fast:
                inner = em.fresh("pid_ab")
                em.emit(f"{inner} = {rest} % {span}")
                rest = f"({rest} // {span})"
            in_group = group * counts[b]
            gid, first, size, local = (em.fresh(n) for n in ("group_id", "first_pid", "group_size", "pid_in_group"))
            em.emit(f"{gid} = {inner} // {in_group}")
            em.emit(f"{first} = {gid} * {group}")
            em.emit(f"{size} = tl.minimum({counts[a]} - {first}, {group})")
            em.emit(f"{local} = {inner} % {in_group}")
            indices[b] = f"{local} // {size}"
            indices[a] = f"{first} + {local} % {size}"
        for j in reversed(range(len(fast))):
            i = fast[j]
            indices[i] = rest if j == 0 else f"{rest} % {counts[i]}"
            if j > 0:
                rest = f"({rest} // {counts[i]})"
        return indices

    def _body(self, region):
        for eqn in region.eqns:
            if eqn.prim is loop_p:
                self._inner_loop(eqn)
            elif eqn.prim is cond_p:
                emit_cond(self.em, eqn, self._body)
            elif eqn.prim is while_p:
                emit_while(self.em, eqn, self._body)
            else:
                lower_eqn(self.em, eqn)

    def _inner_loop(self, loop):
        em, region = self.em, loop.params["region"]
        dims = loop.params["dims"]
        n = len(dims)
        carry_names, squeezed = [], squeezed_carries(em, region)
        for param, init, out in zip(region.params[n:], loop.inputs[2 * n:], loop.outputs):
            name = em.fresh(em.hints.get(out, "carry"))
            shape = param.type.shape
            em.emit(f"{name} = tl.reshape({em(init)}, [{em.dim_expr(shape[1])}, {em.dim_expr(shape[2])}])"
                    if param in squeezed else f"{name} = {em(init)}")
            em.bind(param, name)
            em.bind(out, name)
            carry_names.append(name)
        em.squeezed |= set(squeezed) | {dot.outputs[0] for dot in squeezed.values()}
        names = self._name_handles(loop)
        static, outer, inner = self._range_options(loop)
        if not static and self._peels(loop):
            self._peeled_loop(loop, names[0], carry_names, outer + inner)
        else:
            self._plain_loop(loop, names, static, outer, inner, carry_names)
        for param, name, out in zip(region.params[n:], carry_names, loop.outputs):
            if param in squeezed:  # (its batch of one back after the loop; the 2-d value stays its unit-free form)
                em.unit_free[out] = (name, (0,))
                em.bind(out, em.fresh(name))
                em.emit(f"{em(out)} = tl.expand_dims({name}, 0)")

    def _plain_loop(self, loop, names, static, outer, inner, carry_names) -> None:
        em, region, dims = self.em, loop.params["region"], loop.params["dims"]
        n, depth = len(dims), em.depth
        fn = "tl.static_range" if static else "tl.range"
        for i, (kind, dim) in enumerate(dims):
            begin, end = em(loop.inputs[2 * i]), em(loop.inputs[2 * i + 1])
            options = "".join(", " + o for o in (outer if i == 0 else []) + (inner if i == n - 1 else []))
            if kind == "grid":
                em.emit(f"for {names[i]} in {fn}({begin}, {end}{options}):")
                em.bind(region.params[i], names[i])
                em.depth += 1
                continue
            em.emit(f"for off_{names[i]} in {fn}({begin}, {end}, {em.dim_expr(dim)}{options}):")
            em.depth += 1
            self._tile_lanes(names[i], dim, end)
        self._body_and_carries(region, carry_names)
        em.depth = depth

    def _body_and_carries(self, region, carry_names) -> None:
        em = self.em
        self._body(region)
        results = [em(r) for r in region.results]
        changed = [(c, r) for c, r in zip(carry_names, results) if c != r]
        if len(changed) > 1 and set(c for c, _ in changed) & set(r for _, r in changed):
            em.emit(", ".join(c for c, _ in changed) + " = " + ", ".join(r for _, r in changed))
        else:
            for c, r in changed:
                em.emit(f"{c} = {r}")

    def _peels(self, loop) -> bool:
        """A one-dimensional tile loop of matrix products whose tiles need a mask (a symbolic or indivisible
        extent) is peeled: its whole blocks run unmasked, the last partial block after them."""
        dims = loop.params["dims"]
        # (not from a begin computed on the device: Triton 3.6's Coalesce pass asserts on split-k's peeled loop)
        return (len(dims) == 1 and dims[0][0] == "tile" and isinstance(loop.inputs[0], Lit)
                and self.em.tile_masked(dims[0][1])
                and any(e.prim is dot_p for e in walk_eqns(loop.params["region"].eqns)))

    def _peeled_loop(self, loop, name, carry_names, options) -> None:
        """`for` over the whole blocks with no mask, then `if` a partial block remains, it masked."""
        em, region, dim = self.em, loop.params["region"], loop.params["dims"][0][1]
        begin, end, block = em(loop.inputs[0]), em(loop.inputs[1]), em.dim_expr(dim)
        depth, padded = em.depth, set(em.zero_padded)
        split = em.fresh(f"whole_{name}")
        extent = end if begin == "0" else f"{begin} + ({end} - {begin})"
        em.emit(f"{split} = {extent} // {block} * {block}")
        em.emit(f"for off_{name} in tl.range({begin}, {split}, {block}{''.join(', ' + o for o in options)}):")
        em.depth += 1
        em.unmasked_tiles.add(dim.tile)
        self._tile_lanes(name, dim, end)
        self._body_and_carries(region, carry_names)
        em.unmasked_tiles.discard(dim.tile)
        em.depth, em.zero_padded = depth, padded
        em.emit(f"if {split} < {end}:")
        em.depth += 1
        em.emit(f"off_{name} = {split}")
        self._tile_lanes(name, dim, end)
        self._body_and_carries(region, carry_names)
        em.depth = depth

    def _range_options(self, loop) -> tuple[bool, list, list]:
        """This inner loop's range_* / static_ranges entries (read at its knob site; loops the rewrites
        add take none): (static?, outermost-for options, innermost-for options).

        `flatten` goes on the outermost `for` of a multi-dimensional loop (it flattens the nest
        from there); the others on the innermost, whose body is the work. `config_check` has
        made sure a static range comes with no options and static bounds.
        """
        get = lambda field: self.em.knob(field, loop)  # noqa: E731
        outer, inner = [], []
        if unroll := get("range_unroll_factors"):
            inner.append(f"loop_unroll_factor={int(unroll)}")
        if stages := get("range_num_stages"):
            inner.append(f"num_stages={int(stages)}")
        if (multi_buffer := get("range_multi_buffers")) is not None:
            inner.append(f"disallow_acc_multi_buffer={not multi_buffer}")
        if get("range_flattens"):
            outer.append("flatten=True")
        if get("range_warp_specializes"):
            inner.append("warp_specialize=True")
        # only what this Triton's tl.range accepts
        outer, inner = ([o for o in opts if o.split("=")[0] in backend.compat().range_kwargs()] for opts in (outer, inner))
        return bool(get("static_ranges")), outer, inner


OFFLINE_SMS = 132  # an H100 SXM's SM count: persistent grids compiled with no GPU present


def _phases(loops) -> list[list]:
    """The top-level loops in phases (tl.barrier() separates them), in order; one phase without barriers."""
    phases: dict[int, list] = {}
    for loop in loops:
        phases.setdefault(phase_of(loop), []).append(loop)
    return [phases[k] for k in sorted(phases)] or [[]]


def kernel_sizes(kernel) -> tuple:
    """The SizeVars the kernel equation's code reads (its tensors' sizes and strides, loop bounds, index
    bounds), by name: the kernel's int parameters (static_shapes=False; none otherwise)."""
    found = {}

    def scan(x):
        if isinstance(x, SizeExpr) or isinstance(x, HostType):
            found.update((s.name, s) for s in symbols_of(x))
        elif isinstance(x, Lit):
            scan(x.value)
        elif isinstance(x, (tuple, list)):
            for item in x:
                scan(item)

    for v in kernel.inputs:
        scan(v.type)
    for eqn in walk_eqns(kernel.params["region"].eqns):
        scan(tuple(eqn.inputs))
        scan(tuple(v for k, v in eqn.params.items() if k not in ("region", "orelse", "combine")))
    return tuple(sorted(found.values(), key=lambda s: (s.kind, int(s.name.lstrip("st")))))


def write_kernel(program: Program, config: Config, sites: Sites, interpret: bool) -> KernelSource | None:
    """The kernel of the rewritten `program` under `config`, its knobs read at `sites` (of its canonical form)."""
    if program.kernel is None:
        return None
    _check_block_sizes(program, config)
    return KernelWriter(program, config, sites, interpret).write()


def _check_block_sizes(program: Program, config: Config) -> None:
    """Every block size is a positive power of two (Triton's tl.arange needs one)."""
    for block in program.blocks:
        size = config.block_sizes[block.id]
        if not (isinstance(size, int) and size > 0 and size & (size - 1) == 0):
            where = "tl.tile(..., block_size=...)" if block.fixed else f"Config block_sizes[{block.id}]"
            raise TilefnError(f"block size {size!r} ({where}) must be a positive power of two")


__all__ = ["write_kernel", "KernelSource", "HostType", "TilefnError"]
