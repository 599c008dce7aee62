"""The jit transform: signature key -> traced Program (and, once lowered, its executable)."""
from __future__ import annotations

from .config import Config
from .errors import ArgumentError
from .lower.lowered import lower
from .settings import Settings
from .signature_cache import SignatureCache
from .traced import TracedFunction, as_traced


class JitFunction(TracedFunction):
    """A kernel function compiled once per argument signature.

    `print_output_code`: print each lowering's source to stderr (None: as TILEFN_PRINT_OUTPUT_CODE says).
    """

    def __init__(self, fn, config: Config | None = None, print_output_code: bool | None = None):
        super().__init__(fn, config)
        self.print_output_code = print_output_code
        self._executables = SignatureCache()

    def lower(self, *args, config: Config | None = None, **kwargs):
        """The Program for these arguments, traced with `config`'s tunables, lowered to Triton under
        `config` (default: this jit's config, else the heuristics)."""
        config = config if config is not None else self.config
        program, _ = self.trace_and_bind(args, kwargs, config.tunables if config is not None else ())
        return lower(program, config, settings=Settings.from_env(print_output_code=self.print_output_code))

    def __call__(self, *args, **kwargs):
        if kwargs or len(args) != self.arity:
            args = self.flat(args, kwargs)
        last = self._executables.last
        if last is not None and last[0](args):
            return last[1](*args)
        try:
            key = self.key(args, self.config.tunables if self.config is not None else ())
        except ArgumentError:
            self.trace_and_bind(args, {})  # raises, naming the offending argument
            raise
        executable = self._executables.get(key)
        if executable is None:
            executable = self._executables.get_or_make(key, lambda: self.lower(*args).compile())
        self._executables.remember(args, executable, self.captures_unchanged())
        return executable(*args)


def as_traceable(fn) -> JitFunction:
    """`fn` itself if it is a `tfn.jit` kernel, else `tfn.jit(fn)`."""
    return fn if isinstance(fn, JitFunction) else JitFunction(fn)


def jit(fn=None, *, config: Config | None = None, print_output_code: bool | None = None):
    """`@tfn.jit` / `@tfn.jit(config=...)`: trace, lower and compile once per argument signature.

    `print_output_code=True` prints the generated source of each lowering to stderr; left out, the
    TILEFN_PRINT_OUTPUT_CODE environment variable decides (see `tilefn.settings.Settings`)."""
    if fn is None:
        return lambda f: JitFunction(f, config=config, print_output_code=print_output_code)
    return JitFunction(fn, config=config, print_output_code=print_output_code)


def make_ir(fn):
    """`make_ir(kernel)(*args)` returns the traced Program."""
    kernel = as_traced(fn)
    return lambda *args, **kwargs: kernel.trace_and_bind(args, kwargs)[0]
