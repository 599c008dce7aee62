"""The jit transform: signature key -> traced Program (and, once lowered, its executable)."""
from __future__ import annotations

import logging

import torch

from . import torch_op
from .config import Config
from .errors import ArgumentError
from .rule_table import RuleTable
from .lower.lowered import lower
from .settings import Settings
from .dynamic_guard import dynamic_guard
from .fast_path import MISS
from .signature_cache import CacheInfo, SignatureCache, checked_too, describe_argument, signature_changes
from .trace.ops.matmul import DOT_PRECISIONS

from .traced import TracedFunction, as_traced, refuse_nested_call

_compiling = torch.compiler.is_compiling  # (Dynamo reads it as True while it traces)
log = logging.getLogger("tilefn.compile")
DERIVED_BACKWARD = RuleTable("derived backward")  # "autograd" -> tilefn.autodiff.autograd (which imports this module)


class JitFunction(TracedFunction):
    """A kernel function compiled once per argument signature.

    `print_output_code`: print each lowering's source to stderr (None: as TILEFN_PRINT_OUTPUT_CODE says).
    `dot_precision`: how float32 dots multiply unless a `tl.dot(precision=...)` says: "ieee" (exact
    float32, the default, as torch's matmul), "tf32" (inputs rounded to 10 mantissa bits; the tensor
    cores' fast path) or "tf32x3" (three tf32 products, close to float32).
    `static_shapes`: True (the default) specialises on every size and stride; False traces sizes and
    strides as symbols, so one compile serves every size (`tilefn.trace.dynamic`).
    `static_argnames`: parameters whose float values are compiled in (one executable per value), as
    `tl.specialize` makes them; other floats are runtime arguments (a new value reuses the executable).
    """

    def __init__(self, fn, config: Config | None = None, print_output_code: bool | None = None,
                 dot_precision: str = "ieee", static_shapes: bool = True, static_argnames=()):
        super().__init__(fn, config, dot_precision, static_shapes, static_argnames)
        self.print_output_code = print_output_code
        self._executables = SignatureCache()
        self._op_index = torch_op.register(self)
        self.vjp = None  # def_vjp's backward
        self.vjp_forward = None  # def_vjp's forward saving residuals (None: the kernel itself runs)
        self._last_compiled = None  # describe_argument of the latest compiled call's arguments

    def cache_info(self) -> CacheInfo:
        """Programs traced and executables compiled so far (a new one per signature: see `signature_key`)."""
        return CacheInfo(len(self._programs), len(self._executables), 0)

    def note_compile(self, args) -> None:
        """Log (tilefn.compile, INFO) that `args` need a new compile, and which parameters' signature is new."""
        described = tuple(repr(a) if i in self.static else describe_argument(a) for i, a in enumerate(args))
        if log.isEnabledFor(logging.INFO):
            log.info("compiling %s: %s", self.__name__, signature_changes(self.binder.names, self._last_compiled, described))
        self._last_compiled = described

    def lower(self, *args, config: Config | None = None, **kwargs):
        """The Program for these arguments, traced with `config`'s tunables, lowered to Triton under
        `config` (default: this jit's config, else the heuristics)."""
        config = config if config is not None else self.config
        program, _ = self.trace_and_bind(args, kwargs, config.tunables if config is not None else (),
                                         config.block_sizes if config is not None else ())
        return lower(program, config, settings=Settings.from_env(print_output_code=self.print_output_code))

    def def_vjp(self, bwd, fwd=None):
        """Give this kernel a backward, `bwd((args, outputs), grad_outputs) -> one gradient per argument`
        (None where there is none), in the spirit of jax.custom_vjp; returns `bwd` (a decorator). With
        `fwd` (a kernel: `fwd(*args) -> (outputs, residuals)`, a tuple of tensors), calls autograd records
        run `fwd` instead and `bwd` gets `((args, outputs, residuals), grad_outputs)` (but through a
        `tfn.tune` of this kernel, which runs its tuned self: `(args, outputs)`)."""
        self.vjp, self.vjp_forward = bwd, fwd
        return bwd

    def __call__(self, *args, **kwargs):
        if _compiling():  # torch.compile: one graph node, the kernel's custom op (tilefn.torch_op)
            return torch_op.entry(self._op_index, *args, **kwargs)
        if kwargs or len(args) != self.arity:
            args = self.flat(args, kwargs)
        fast = self._executables.fast
        if fast is not None and (out := fast(args)) is not MISS:
            return out
        if torch_op.grad_needed(args):
            return torch_op.entry(self._op_index, *args)
        return self.run(*args)

    def run(self, *args):
        """The call itself, on flat arguments: compile once per signature, launch (no custom op, no autograd)."""
        fast = self._executables.fast
        if fast is not None and (out := fast(args)) is not MISS:
            return out
        refuse_nested_call(self)
        tunables = self.config.tunables if self.config is not None else ()
        try:
            key = self.resolved_key(args, tunables)
        except ArgumentError:
            self.trace_and_bind(args, {})  # raises, naming the offending argument
            raise
        executable = self._executables.get(key)
        if executable is None:
            key = self.settled_key(args, tunables)
            executable = self._executables.get_or_make(key, lambda: self._compile(args))
        if not any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):  # (those go by the op)
            self._executables.remember(args, executable, self.captures_unchanged(), self.static, self.fast_guard(args))
        return executable(*args)

    def fast_guard(self, args):
        """The fast path's check (None: the cache's own): of a dynamic kernel, the same dynamic signature and
        sizes the Program's guards admit; of one whose host code reads argument values, the same values too."""
        guard = None if self.static_shapes else \
            dynamic_guard(args, self.matching_guards(args), self.guard_check(args), self.static)
        tunables = self.config.tunables if self.config is not None else ()
        return checked_too(guard, self.value_check(args, tunables), args, self.static)

    def _compile(self, args):
        self.note_compile(args)
        return self.lower(*args).compile()


def as_traceable(fn) -> JitFunction:
    """`fn` itself if it is a `tfn.jit` kernel, else `tfn.jit(fn)`."""
    return fn if isinstance(fn, JitFunction) else JitFunction(fn)


def jit(fn=None, *, config: Config | None = None, print_output_code: bool | None = None,
        dot_precision: str = "ieee", static_shapes: bool = True, static_argnames=(), autograd: bool = False):
    """`@tfn.jit` / `@tfn.jit(config=...)`: trace, lower and compile once per argument signature.

    `print_output_code=True` prints the generated source of each lowering to stderr; left out, the
    TILEFN_PRINT_OUTPUT_CODE environment variable decides (see `tilefn.settings.Settings`).
    `dot_precision`, `static_shapes`, `static_argnames` (parameters whose floats are compiled in): see
    JitFunction. `autograd=True`: the backward is derived (`tfn.autograd`)."""
    if dot_precision not in DOT_PRECISIONS:
        raise ValueError(f"tfn.jit: dot_precision must be one of {list(DOT_PRECISIONS)}, got {dot_precision!r}")
    names = static_argnames if isinstance(static_argnames, str) else tuple(static_argnames)  # (a str is refused)

    def make(f):
        kernel = JitFunction(f, config=config, print_output_code=print_output_code, dot_precision=dot_precision,
                             static_shapes=static_shapes, static_argnames=names)
        return DERIVED_BACKWARD["autograd"](kernel) if autograd else kernel

    return make if fn is None else make(fn)


def make_ir(fn):
    """`make_ir(kernel)(*args)` returns the traced Program."""
    kernel = as_traced(fn)
    return lambda *args, **kwargs: kernel.trace_and_bind(args, kwargs)[0]
