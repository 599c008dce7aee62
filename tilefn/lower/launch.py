"""Turn Triton kernel source text into a callable with minimal per-call host overhead."""
from __future__ import annotations

import hashlib
import linecache
import sys
import threading
import types
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import attrs
import torch

from .. import disk_cache
from ..settings import Settings
from . import triton_compat as compat
from .triton_compat import CompiledKernel, InterpretedKernel, JITFunction

_MODULES: dict[str, types.ModuleType] = {}
_MODULES_LOCK = threading.Lock()


def _source_file(source: str, digest: str, cache_dir: Path) -> str:
    """The file name to compile `source` under: its content-addressed file under `cache_dir`, or, where
    that cannot be written, a name registered in linecache (inspect.getsource, which @triton.jit needs,
    and tracebacks read the lines there)."""
    relative = f"src/{digest}.py"
    if disk_cache.read(cache_dir, relative) == source or disk_cache.write(cache_dir, relative, source):
        return str(cache_dir / relative)
    name = f"<tilefn source {digest}>"
    linecache.cache[name] = (len(source), None, source.splitlines(keepends=True), name)
    return name


def _import_source(source: str, cache_dir: Path | None) -> types.ModuleType:
    """Import `source` once per process from its file under `cache_dir` (default:
    `Settings.from_env().cache_dir`), or from memory when that cannot be written."""
    digest = hashlib.sha256(source.encode()).hexdigest()
    with _MODULES_LOCK:
        if digest not in _MODULES:
            filename = _source_file(source, digest, cache_dir if cache_dir is not None else Settings.from_env().cache_dir)
            mod_name = f"_tilefn_src_{digest}"
            module = types.ModuleType(mod_name)
            module.__file__ = filename
            sys.modules[mod_name] = module
            try:
                exec(compile(source, filename, "exec"), module.__dict__)
            except BaseException:
                del sys.modules[mod_name]
                raise
            _MODULES[digest] = module
        return _MODULES[digest]


def load_kernel(source: str, name: str, *, interpret: bool, cache_dir: Path | None = None) -> Any:
    """Import `source` (see `_import_source`) and return its JITFunction `name` (an interpreter function if interpret)."""
    fn = getattr(_import_source(source, cache_dir), name)
    return InterpretedKernel(fn.fn) if interpret else fn


class Launcher(Protocol):
    """A kernel bound to its constexprs and device: launcher(grid, *runtime_args)."""

    def __call__(self, grid: tuple[int, int, int], *args: Any) -> None: ...


@attrs.frozen(eq=False)
class _InterpLauncher:
    """Runs the kernel on CPU tensors through Triton's interpreter."""

    kernel: InterpretedKernel
    names: tuple[str, ...]
    constexprs: Mapping[str, Any]

    def __call__(self, grid: tuple[int, int, int], *args: Any) -> None:
        """Interpret every program of the grid."""
        self.kernel.run(grid=tuple(grid), warmup=False, **dict(zip(self.names, args)), **self.constexprs)


@attrs.frozen
class AlignedPointer:
    """A signature entry for a pointer argument whose address is a multiple of 16 bytes (or an int
    argument divisible by 16: Triton reads both from `tt.divisibility`)."""

    type: str


def _compile_cuda(jit_fn: JITFunction, signature_args: Sequence[Any], constexprs: Mapping[str, Any], *,
                  num_warps: int, num_stages: int, target: Any) -> CompiledKernel:
    """Compile once: types from signature_args (tensors, scalars or type strings), 16-byte alignment from tensors."""
    signature, attributes, runtime = {}, {}, iter(signature_args)
    for i, arg_name in enumerate(jit_fn.arg_names):
        if arg_name in constexprs:
            signature[arg_name] = "constexpr"
            continue
        arg = next(runtime)
        aligned = isinstance(arg, AlignedPointer) or (isinstance(arg, torch.Tensor) and arg.data_ptr() % 16 == 0)
        signature[arg_name] = arg.type if isinstance(arg, AlignedPointer) else (
            arg if isinstance(arg, str) else compat.mangle_type(arg))
        if aligned:
            attributes[(i, )] = [["tt.divisibility", 16]]
    return compat.compile_kernel(jit_fn, signature, constexprs, attributes, num_warps=num_warps, num_stages=num_stages,
                                 target=target)


def precompile(source: str, name: str, signature_args: Sequence[Any], constexprs: Mapping[str, Any],
               num_warps: int, num_stages: int) -> None:
    """Compile for the current CUDA device only to fill Triton's on-disk cache (for worker processes)."""
    jit_fn = load_kernel(source, name, interpret=False)
    _compile_cuda(jit_fn, signature_args, dict(constexprs), num_warps=num_warps, num_stages=num_stages,
                  target=compat.current_target())


def compile_offline(source: str, name: str, signature_args: Sequence[Any], constexprs: Mapping[str, Any],
                    num_warps: int, num_stages: int, arch: int) -> CompiledKernel:
    """Compile for an NVIDIA GPU of compute capability `arch` (90: Hopper) with no GPU present."""
    jit_fn = load_kernel(source, name, interpret=False)
    return _compile_cuda(jit_fn, signature_args, dict(constexprs), num_warps=num_warps, num_stages=num_stages,
                         target=compat.gpu_target(arch))


def make_launcher(source: str, name: str, *, signature_args: Sequence[Any], constexprs: Mapping[str, Any],
                  num_warps: int, num_stages: int, device: torch.device | str,
                  cache_dir: Path | None = None) -> Launcher:
    """Build a Launcher for kernel `name` of `source`: compiled for a CUDA device, interpreted for the CPU."""
    device = torch.device(device)
    fn = load_kernel(source, name, interpret=False, cache_dir=cache_dir)
    jit_fn = fn if isinstance(fn, JITFunction) else JITFunction(fn.fn)  # TRITON_INTERPRET=1 process-wide
    consts = {p.name: p.default for p in jit_fn.params if p.is_constexpr and p.has_default} | dict(constexprs)
    if missing := [p.name for p in jit_fn.params if p.is_constexpr and p.name not in consts]:
        raise ValueError(f"{name}: missing constexpr values for {missing}")
    params = jit_fn.arg_names
    n_runtime = len(params) - len(consts)
    if set(params[:n_runtime]) & consts.keys() or not consts.keys() <= set(params):
        raise ValueError(f"{name}: constexpr params {sorted(consts)} must be exactly the trailing params of {params}")
    if len(signature_args) != n_runtime:
        raise ValueError(f"{name}: expected {n_runtime} signature_args for {params[:n_runtime]}")
    if device.type == "cpu":
        return _InterpLauncher(InterpretedKernel(jit_fn.fn), tuple(params[:n_runtime]), consts)
    if device.type != "cuda":
        raise ValueError(f"unsupported device {device}")
    device_index = device.index if device.index is not None else torch.cuda.current_device()
    with torch.cuda.device(device_index):
        kernel = _compile_cuda(jit_fn, signature_args, consts, num_warps=num_warps, num_stages=num_stages,
                               target=compat.current_target())
        return compat.cuda_launcher(kernel, device_index, len(consts), _scratch(device_index))


def _scratch(device_index: int) -> Callable[[int], torch.Tensor]:
    """Per-launch global scratch memory from torch's caching allocator (stream-ordered; pooled by graph capture)."""
    device = torch.device("cuda", device_index)
    return lambda size: torch.empty(size, dtype=torch.uint8, device=device)
