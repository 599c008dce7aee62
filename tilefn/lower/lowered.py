"""A Program lowered under one Config: readable source, and the executable compiled from it."""
from __future__ import annotations

import sys
from pathlib import Path

import attrs
import torch

from ..config import Config
from ..errors import KernelResourceError
from ..settings import Settings
from ..trace.ir import Program
from ..trace.printer import Namer
from ..trace.types import PyScalarType
from . import backend
from .aliasing import check_internal_overlap
from .codegen import KernelSource, write_kernel
from .host_function import write_host
from .config_check import check_config
from .defaults import complete_config
from .passes import CONFIGURED, canonical, run_passes
from .sites import Sites, sites_of
from .target import device_of


@attrs.frozen(eq=False)
class Lowered:
    """`fn.lower(*args, config=...)`: the rewritten Program, the kernel source and the launcher."""

    program: Program
    config: Config
    sites: Sites  # the knob sites `config` was read at
    kernel: KernelSource | None
    host_source: str
    host_globals: dict
    size_reads: tuple  # the host source's lines that read the call's sizes (`host_function.size_reads`)
    device: torch.device
    cache_dir: Path

    @property
    def source(self) -> str:
        kernel = self.kernel.kernel if self.kernel else "# (no tile loops: nothing runs on the device)\n"
        launch = ""
        if self.kernel:
            consts = ", ".join(f"{k}={v}" for k, v in self.kernel.constexprs.items())
            launcher = "_launch{k}(grid, *operands)" if self.kernel.phase_grids else "_launch(grid, *operands)"
            phase = ", PHASE=k" if self.kernel.phase_grids else ""
            launch = (f"# {launcher} runs {self.kernel.kernel_name}[grid](*operands, {consts}{phase}, "
                      f"num_warps={self.kernel.num_warps}, num_stages={self.kernel.num_stages})\n")
        return f"{kernel}\n\n{launch}{self.host_source}"

    def compile_jobs(self) -> list[tuple]:
        """Picklable arguments of `launch.precompile`, one per launch of this kernel (one per phase
        with tl.barrier(); none without a kernel)."""
        if self.kernel is None:
            return []
        k = self.kernel
        return [(k.kernel, k.kernel_name, signature_args(k), constexprs,
                 k.num_warps, k.num_stages) for constexprs in self._launch_constexprs()]

    def _launch_constexprs(self) -> list[dict]:
        """The constexprs of each launch: the block sizes, and PHASE=k per phase with tl.barrier()."""
        k = self.kernel
        if not k.phase_grids:
            return [dict(k.constexprs)]
        return [{**k.constexprs, "PHASE": phase} for phase in range(len(k.phase_grids))]

    def compile(self):
        """The host function, with its kernel compiled (for CUDA) or interpreted (for CPU tensors)."""
        namespace = {"torch": torch, **self.host_globals}
        launchers = {}
        if self.kernel is not None:
            k = self.kernel
            signature = signature_args(k)
            for phase, constexprs in enumerate(self._launch_constexprs()):
                try:
                    launcher = backend.launch().make_launcher(
                        k.kernel, k.kernel_name, signature_args=signature, constexprs=constexprs,
                        num_warps=k.num_warps, num_stages=k.num_stages, device=self.device,
                        cache_dir=self.cache_dir)
                except backend.compat().OutOfResources as error:
                    raise resource_error(self.program.name, self.config, error) from None
                launchers[f"_launch{phase}" if k.phase_grids else "_launch"] = launcher
        namespace.update(launchers)
        source = self._spelled(launchers, namespace)
        exec(compile(source, f"<tilefn launcher {self.program.name}>", "exec"), namespace)
        host = namespace[self.program.name]
        host.host_source, host.size_reads = source, self.size_reads  # (a fast path inlines them: tilefn.fast_path)
        return host

    def _spelled(self, launchers: dict, namespace: dict) -> str:
        """The host source run: `host_source` with each of `launchers`' C launch written out in place of
        its call, where every launcher says how (one Python frame less per launch; the printed source
        keeps the calls). Adds the names the calls read to `namespace`."""
        spells = {name: getattr(launcher, "spell", None) for name, launcher in launchers.items()}
        if not spells or None in spells.values():
            return self.host_source
        source, named, _ = write_host(self.program, self.kernel, Namer(dict(self.program.hints)),
                                      pointers=self.device.type == "cuda",
                                      spells=spells)
        namespace.update(named)
        return source


_RESOURCE_UNITS = {"shared memory": "bytes of shared memory", "threads": "threads per block",
                   "tensor memory": "columns of tensor memory"}


def resource_error(kernel_name: str, config: Config, error) -> KernelResourceError:
    """Triton's OutOfResources at a kernel's load, told as what `config` asks of the GPU and what to change."""
    unit = _RESOURCE_UNITS.get(error.name, error.name)
    return KernelResourceError(
        f"kernel {kernel_name} needs {error.required} {unit} under {config}, but this GPU has {error.limit}: "
        "pass a Config with smaller block_sizes or fewer num_stages (num_warps, for threads) to tfn.jit(config=...), "
        "or let tfn.tune(kernel) pick one that fits")


_PTR_TYPES = {torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16", torch.float64: "*fp64",
              torch.int64: "*i64", torch.int32: "*i32", torch.int16: "*i16", torch.int8: "*i8",
              torch.uint8: "*u8", torch.bool: "*i1", torch.float8_e4m3fn: "*fp8e4nv", torch.float8_e5m2: "*fp8e5"}


_SCALAR_TYPES = {float: "fp64", bool: "i32"}  # runtime scalars (tilefn.trace.scalars): floats as doubles, bools as ints


def _signature_arg(host_type):
    if isinstance(host_type, PyScalarType):
        return _SCALAR_TYPES[host_type.kind]
    kind = _PTR_TYPES[host_type.dtype]
    return backend.launch().AlignedPointer(kind) if host_type.aligned else kind


def _size_arg(size):
    """A size or stride argument (static_shapes=False): int32 unless its tensor's offsets may pass int32,
    marked divisible by 16 where the signature says so (Triton's vectorisation reads it)."""
    kind = "i64" if size.wide else "i32"
    return backend.launch().AlignedPointer(kind) if size.divisible16 else kind


def signature_args(kernel: KernelSource) -> list:
    """The compile signature of the kernel's runtime arguments: its pointers, then its sizes."""
    return [_signature_arg(v.type) for v in kernel.operands] + [_size_arg(s) for s in kernel.sizes]


def lower(program: Program, config: Config | None = None, interpret: bool | None = None,
          settings: Settings | None = None) -> Lowered:
    """Rewrite `program`, fill in `config` from the heuristics, and generate the code (for Triton's
    CPU interpreter when `interpret`; default: when the program's tensors are on the CPU), under
    `settings` (default: `Settings.from_env()`). The Config is checked against the knob sites of
    the canonical program first."""
    settings = settings if settings is not None else Settings.from_env()
    check_internal_overlap(program)
    structure = canonical(program, settings)
    sites = sites_of(structure)
    config = complete_config(structure, config)
    check_config(config, sites, program.name)
    program = run_passes(CONFIGURED, structure, config, settings)
    sizes = list(config.block_sizes)  # rewrites may add blocks (fixed sizes, e.g. reduction chunks)
    config = attrs.evolve(config, block_sizes=sizes + [b.fixed for b in program.blocks[len(sizes):]])
    device = device_of(program)
    kernel = write_kernel(program, config, sites, interpret=device.type == "cpu" if interpret is None else interpret)
    namer = Namer(dict(program.hints))
    host_source, host_globals, reads = write_host(program, kernel, namer, pointers=device.type == "cuda")
    lowered = Lowered(program, config, sites, kernel, host_source, host_globals, reads, device, settings.cache_dir)
    if settings.print_output_code:
        print(lowered.source, file=sys.stderr)
    return lowered
