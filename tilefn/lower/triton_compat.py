"""Every Triton internal tilefn relies on, behind version checks: the interpreter's patching, the compile
API, the C launcher's argument layout, the language's optional parts. Tested with Triton 3.5 to 3.7; a
Triton outside that range gets one warning when this module is first imported (at the first lowering)."""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
import types
import warnings
from typing import Any, Callable, Mapping

import triton
import triton.language as tl
from packaging.version import InvalidVersion, Version
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, CompiledKernel
from triton.runtime import driver
from triton.runtime import interpreter as _interp
from triton.runtime.errors import OutOfResources
from triton.runtime.jit import JITFunction, mangle_type

__all__ = ["TESTED", "minor_version", "untested_message", "warn_if_untested", "has_block_ptr",
           "block_ptr_fallback_notice", "range_kwargs", "InterpretedKernel", "compile_kernel", "gpu_target",
           "current_target", "cuda_launcher", "JITFunction", "CompiledKernel", "mangle_type", "OutOfResources"]

TESTED = ((3, 5), (3, 7))  # the oldest and newest (major, minor) of Triton the suite runs on
_LOG = logging.getLogger("tilefn.compat")


# --- versions --------------------------------------------------------------------------------
def minor_version(text: str) -> tuple[int, int] | None:
    """(major, minor) of a version string ("3.6.0", "3.7.0+git1a2b", "3.8.0rc1"); None if it is not one."""
    try:
        release = Version(text).release
    except InvalidVersion:
        return None
    return (release + (0,))[:2]


def untested_message(text: str) -> str | None:
    """What to tell a user of Triton `text` outside the tested range; None inside it."""
    version = minor_version(text)
    if version is not None and TESTED[0] <= version <= TESTED[1]:
        return None
    low, high = (".".join(map(str, v)) for v in TESTED)
    return (f"tilefn is tested with Triton {low} to {high}, not {text!r}: kernels may fail to compile or "
            f"launch; install a tested Triton (pip install 'triton>={low},<{TESTED[1][0]}.{TESTED[1][1] + 1}')")


@functools.cache
def warn_if_untested(text: str) -> None:
    """Warn (once per version string and process) when Triton `text` is outside the tested range."""
    if message := untested_message(text):
        warnings.warn(message, RuntimeWarning, stacklevel=2)


warn_if_untested(triton.__version__)
_VERSION = minor_version(triton.__version__) or (0, 0)
_AT_LEAST_3_7 = _VERSION >= (3, 7)


# --- the language ----------------------------------------------------------------------------
def has_block_ptr() -> bool:
    """Whether this Triton has `tl.make_block_ptr` (deprecated in 3.7, removed in 3.9)."""
    return hasattr(tl, "make_block_ptr")


@functools.cache
def block_ptr_fallback_notice() -> None:
    """Say once per process that block pointers are replaced."""
    _LOG.warning("tilefn: Triton %s has no block pointers: indexing='block_ptr' uses tensor descriptors where "
                 "an access allows them, else pointers", triton.__version__)


@functools.cache
def range_kwargs() -> frozenset:
    """The keyword arguments this Triton's `tl.range` accepts."""
    return frozenset(inspect.signature(tl.range.__init__).parameters)


# --- the CPU interpreter ---------------------------------------------------------------------
_INTERPRETER_LOCK = threading.RLock()
_MISSING = object()
# _patch_lang patches the language modules found in a function's globals: this one's hold only tl.core.
_CORE_PROBE = types.FunctionType((lambda: None).__code__, {"core": tl.core})
# What the interpreter patches: the language modules, its tensor classes and dtype; tilefn: JITFunction and
# (Triton 3.5) the descriptor check.
_PATCHED = (tl, tl.core, tl.math, tl.core.tensor, tl.core.dtype, tl.core.tensor_descriptor_base, JITFunction,
            _interp.TensorDescHandle)


def _validate_descriptor(desc) -> None:
    """TensorDescHandle.validate as Triton 3.6 has it: 3.5's takes strides in elements for bytes, refusing
    e.g. a float32 row stride of 4 (16 bytes) that the GPU accepts."""
    assert desc.base.data.item() % 16 == 0, "base must be 16-byte aligned"
    assert len(desc.strides) == desc.ndim and len(desc.block_shape) == desc.ndim and desc.ndim >= 1
    itemsize = desc.base.dtype.element_ty.primitive_bitwidth // 8
    assert all(s.data.item() * itemsize % 16 == 0 for s in desc.strides[:-1]), "stride must be 16-byte aligned"
    assert desc.strides[-1].data.item() == 1, "last dim must be contiguous"


@contextlib.contextmanager
def _restoring(objects):
    """Put back on exit every attribute of `objects` changed or added meanwhile (Triton 3.5's interpreter
    patches the language for good, 3.6's undoes only its own kernel's patches)."""
    saved = [(obj, dict(vars(obj))) for obj in objects]
    try:
        yield
    finally:
        for obj, before in saved:
            now = vars(obj)
            for name in [n for n, v in now.items() if n not in before and not inspect.ismodule(v)]:
                delattr(obj, name)
            for name, value in before.items():
                if now.get(name, _MISSING) is not value:
                    setattr(obj, name, value)


@functools.cache
def _interpreted(fn: Callable) -> Callable:
    """The interpreter's rewrite of a plain Python function (cached)."""
    return _interp.InterpretedFunction(fn).rewrite()


def _call_interpreted(jit_fn: JITFunction, *args: Any, **kwargs: Any) -> Any:
    """Stand-in for JITFunction.__call__: run the device function's interpreter rewrite (language already patched)."""
    return _interpreted(jit_fn.fn)(*args, **kwargs)


class InterpretedKernel:
    """A kernel run on CPU tensors by Triton's interpreter, while TRITON_INTERPRET is unset process-wide:
    the language is patched only during a call, one call at a time (the patches are process-wide)."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self._function = _interp.InterpretedFunction(fn)

    def run(self, *args: Any, grid: tuple, warmup: bool = False, **kwargs: Any) -> None:
        """Interpret every program of `grid` (as JITFunction.run; `warmup` runs nothing)."""
        if warmup:
            return
        with _INTERPRETER_LOCK, _restoring(_PATCHED):
            _interp._patch_lang(_CORE_PROBE)  # tl.standard's @jit helpers (tl.sum, tl.zeros) need tl.core patched
            JITFunction.__call__ = _call_interpreted  # user helpers called from the kernel
            if _VERSION < (3, 6):
                _interp.TensorDescHandle.validate = _validate_descriptor
            executor = _interp.GridExecutor(self._function.rewrite(), self._function.arg_names, grid)
            executor(*args, **kwargs)

    def __getitem__(self, grid: tuple) -> Callable[..., None]:
        """`kernel[grid](*args)`, as for a JITFunction."""
        return lambda *args, **kwargs: self.run(*args, grid=grid, **kwargs)


# --- compiling -------------------------------------------------------------------------------
def compile_kernel(jit_fn: JITFunction, signature: Mapping[str, str], constexprs: Mapping[str, Any],
                   attributes: Mapping, *, num_warps: int, num_stages: int, target: GPUTarget) -> CompiledKernel:
    """`triton.compile` of `jit_fn` with this signature (type strings; "constexpr" for constexprs)."""
    options = {"num_warps": num_warps, "num_stages": num_stages, "debug": triton.knobs.runtime.debug}
    return triton.compile(ASTSource(jit_fn, dict(signature), dict(constexprs), dict(attributes)), target=target,
                          options=options)


def gpu_target(arch: int) -> GPUTarget:
    """An NVIDIA GPU of compute capability `arch` (90: Hopper), for compiling with no GPU present."""
    return GPUTarget("cuda", arch, 32)


def current_target() -> GPUTarget:
    """The current CUDA device, as Triton's compiler names it."""
    return driver.active.get_current_target()


# --- the C launcher --------------------------------------------------------------------------
def cuda_launcher(kernel: CompiledKernel, device_index: int, n_constexprs: int,
                  scratch: Callable[[int], Any]) -> Callable[..., None]:
    """`launcher(grid, *runtime_args)`: Triton's C launcher called as CudaLauncher does, on torch's current
    stream, with no binding, hooks or launch metadata; global scratch (device-made tensor descriptors)
    from `scratch(bytes)`. Loads the module (CompiledKernel._init_handles) and keeps it alive."""
    run, head, tail = kernel.run, kernel.packed_metadata, (None,) * n_constexprs
    stream, function = driver.active.get_current_stream, kernel.function
    if not hasattr(run, "launch") or run.profile_scratch_size:  # Triton's own __call__ (profiling, other drivers)
        def launcher(grid, *args):
            run(grid[0], grid[1], grid[2], stream(device_index), function, head, None, None, None, *args, *tail)
    else:
        launch, flags, size = run.launch, (run.launch_cooperative_grid, run.launch_pdl), run.global_scratch_size
        per_program = size * getattr(run, "num_ctas", 1)
        if _AT_LEAST_3_7:  # 3.7: metadata and hooks, scratch, argument annotations, one tuple of arguments
            annotations, signature = run.arg_annotations, run.kernel_signature

            def launcher(grid, *args):
                memory = scratch(grid[0] * grid[1] * grid[2] * per_program) if size else None
                launch(grid[0], grid[1], grid[2], stream(device_index), function, *flags, head, None, None, None,
                       memory, None, annotations, signature, (*args, *tail))
            if not size:
                launcher.spell = _spelling(launch, stream, device_index, function,
                                           (*flags, head, None, None, None, None, None, annotations, signature),
                                           tail, packed=True)
        elif size:  # 3.5, 3.6: scratch, metadata and hooks, the arguments
            def launcher(grid, *args):
                memory = scratch(grid[0] * grid[1] * grid[2] * per_program)
                launch(grid[0], grid[1], grid[2], stream(device_index), function, *flags, memory, None, head, None,
                       None, None, *args, *tail)
        else:
            fixed = (*flags, None, None, head, None, None, None)

            def launcher(grid, *args):
                launch(grid[0], grid[1], grid[2], stream(device_index), function, *fixed, *args, *tail)
            launcher.spell = _spelling(launch, stream, device_index, function, fixed, tail, packed=False)
    launcher.kernel = kernel
    return launcher


def _spelling(launch, stream, device_index: int, function, fixed: tuple, tail: tuple, packed: bool):
    """How generated host code calls the C `launch` itself, as the launcher above does, with no Python frame
    between: `spell(name, grid texts, argument texts) -> (call text, the globals it names)`; `fixed`: the
    arguments between the function and the kernel's (None and bools spelled as literals); `packed`: the
    kernel's arguments go as one tuple (Triton 3.7)."""

    def spell(name: str, grid, arguments) -> tuple[str, dict]:
        namespace = {f"{name}_c": launch, f"{name}_stream": stream, f"{name}_function": function}
        middle = []
        for i, value in enumerate(fixed):
            if value is None or isinstance(value, bool):
                middle.append(repr(value))
            else:
                namespace[f"{name}_{i}"] = value
                middle.append(f"{name}_{i}")
        kernel_args = [*arguments, *map(repr, tail)]
        spelled = f"({', '.join(kernel_args)},)" if packed else ", ".join(kernel_args)
        call = f"{name}_c({', '.join(grid)}, {name}_stream({device_index}), {name}_function, {', '.join(middle)}, {spelled})"
        return call, namespace

    return spell
