"""`helion.kernel`: a kernel function with Helion's decorator, settings and methods, run by tilefn.

    @helion.kernel(config=helion.Config(block_sizes=[32]))   # tfn.jit(fn, config=...)
    @helion.kernel(autotune_effort="quick")                   # tfn.tune(tfn.jit(fn), effort="quick")
    @helion.kernel(configs=[c1, c2])                          # tfn.tune(..., configs=[c1, c2])

Calls go straight to one `TunedFunction` (a subclass that also holds fixed configs), so a call
costs what a tfn.jit call costs. Only when a debugging setting is on (print_output_code,
print_repro, autotune_log) does a call look up its signature to report new ones.
"""
from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import sys
import time

import torch

from .. import torch_op
from ..config import Config as TfnConfig
from ..interpret import interpret
from ..jit import JitFunction, _compiling
from ..signature_cache import signature_key
from ..tune.tune import TunedFunction
from ..tune.spec import ConfigSpec
from .config import Config
from .config_spec import BoundEnv, HelionConfigSpec
from .language import constexpr_params
from .policy import check_kernel
from .repro import repro_script
from .settings import Settings, SettingsView, triton_precision


class _Tuned(TunedFunction):
    """tfn.tune's TunedFunction, plus: a fixed config (no tuning), Helion's config overrides,
    configs chosen by `kernel.autotune`, and the autotune log."""

    def __init__(self, jitted, settings: Settings, *, fixed=None, configs=None, effort=None, use_cache=True,
                 key=None):
        super().__init__(jitted, effort=effort or settings.autotune_effort, search=settings.autotune_search,
                         configs=configs, use_cache=use_cache, seed=settings.autotune_random_seed,
                         verbose=settings.autotune_progress_bar, reference=settings.autotune_baseline_fn, key=key)
        self.settings, self.fixed = settings, fixed

    def pick_config(self, args):
        """The fixed config, else tfn.tune's pick (logged under autotune_log) with the overrides on top."""
        fixed = check_kernel(self.jitted, args, self.fixed)  # Helion's refusals and block_sizes
        if fixed is not None:
            return fixed
        if self.settings.autotune_log:
            best = self._logged_pick(args)
        else:
            best = super().pick_config(args)
        overrides = dict(self.settings.autotune_config_overrides)
        if overrides:  # Helion's lists (range_*: an entry per grid loop too) into tilefn's slots
            best = check_kernel(self.jitted, args, Config(**{**Config.of(best).to_dict(), **overrides}))
        return Config.of(best)

    def _logged_pick(self, args):
        """Helion's autotune_log: `<base>.log` gets the tuner's messages, `<base>.csv` one row per tuning."""
        base = self.settings.autotune_log
        buffer = io.StringIO()
        handler = logging.FileHandler(f"{base}.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("tilefn.tune")
        old_level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        start = time.perf_counter()
        try:
            with contextlib.redirect_stderr(_Tee(sys.stderr, buffer)):
                best = super().pick_config(args)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            handler.close()
        seconds = time.perf_counter() - start
        signature = describe_args(args)
        with open(f"{base}.log", "a") as f:
            f.write(buffer.getvalue())
            f.write(f"{self.__name__}({signature}): effort={self.effort} search={self.search} "
                    f"tuned in {seconds:.2f} s, best {Config.of(best)!r}\n")
        new = not os.path.exists(f"{base}.csv")
        with open(f"{base}.csv", "a") as f:
            if new:
                f.write("kernel,signature,effort,search,tune_seconds,config\n")
            f.write(",".join(_csv(v) for v in (self.__name__, signature, self.effort, self.search,
                                                  f"{seconds:.3f}", repr(Config.of(best)))) + "\n")
        return best


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self):
        for s in self.streams:
            s.flush()

    def isatty(self):
        return self.streams[0].isatty()


def _csv(value: str) -> str:
    value = str(value)
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value


def describe_args(args) -> str:
    parts = []
    for a in args:
        if isinstance(a, torch.Tensor):
            parts.append(f"{str(a.dtype).removeprefix('torch.')}{list(a.shape)}@{a.device}")
        else:
            parts.append(repr(a))
    return ", ".join(parts)


class Kernel:
    """What `@helion.kernel` returns: call it like the function; `.bind(args)`, `.autotune(args)`.

    `.jitted` is its `tfn.jit` kernel, `.tuned` the `TunedFunction` calls go to.
    """

    def __init__(self, fn, *, configs=(), settings: Settings, key=None):
        if isinstance(fn, Kernel):
            fn = fn.fn
        self.fn = fn
        self.key = key  # Helion's key=: f(*args) -> a hashable that also picks the config
        self.configs = [Config.of(c) for c in configs]
        functools.update_wrapper(self, fn)
        self.name = fn.__name__
        self.settings = SettingsView(self)
        self.configure(settings)
        settings.warn_ignored(self.name)

    def configure(self, settings: Settings, changed: str | None = None) -> None:
        """Make this kernel anew under `settings` (what `kernel.settings.x = v` does): traced
        programs, compiled kernels and tuned configs are forgotten."""
        self.settings_value = settings
        # the first config's hl.register_tunable values are where tuning starts (and what lowering
        # without a config uses); every config is traced with its own
        base = self.configs[0].tunables if self.configs else ()
        self.jitted = JitFunction(self.fn, config=TfnConfig(tunables=base) if base else None,
                                  dot_precision=triton_precision(settings.dot_precision),
                                  static_shapes=settings.static_shapes, static_argnames=constexpr_params(self.fn))
        fixed = self.configs[0] if len(self.configs) == 1 and not settings.force_autotune else None
        self.tuned = _Tuned(self.jitted, settings, fixed=fixed,
                            configs=self.configs if len(self.configs) > 1 else None,
                            use_cache=not settings.force_autotune, key=self.key)
        self._eager = None
        if settings.ref_mode == "eager":
            self._eager = interpret(self.jitted, config=fixed)
        self._hooked = settings.print_output_code or settings.print_repro or self._eager is not None
        self._seen: set = set()
        if changed is not None and changed in settings.no_effect():
            settings.warn_ignored(self.name, [changed])

    # --- calling --------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if _compiling():  # torch.compile: one graph node, the kernel's custom op (tilefn.torch_op)
            return torch_op.entry(self.tuned._op_index, *args, **kwargs)
        if kwargs or len(args) != self.jitted.arity:
            args = self.jitted.flat(args, kwargs)  # one value per parameter, defaults applied
        if self._hooked:
            if self._eager is not None:  # ref_mode="eager" / HELION_INTERPRET=1: eager PyTorch, tile by tile
                return self._eager(*args)
            self._report_new_signature(args)
        return self.tuned(*args)

    def _report_new_signature(self, args) -> None:
        key = signature_key(args, {})
        if key in self._seen:
            return
        config = self.tuned.best_config(*args)
        if self.settings.print_repro:
            print(repro_script(self, args, config), file=sys.stderr)
        if self.settings.print_output_code:
            source = self.jitted.lower(*args, config=config).source
            print(f"# tilefn.helion: {self.name} with {Config.of(config)!r}\n{source}", file=sys.stderr)
        self._seen.add(key)

    # --- Helion's kernel API ------------------------------------------------------------------
    def bind(self, args) -> "BoundKernel":
        """The kernel specialised to these arguments (a tuple): `.to_triton_code()`, `.config`, ..."""
        if not isinstance(args, (tuple, list)):
            args = (args,)
        return BoundKernel(self, self.jitted.flat(tuple(args), {}))

    def autotune(self, args, force: bool = True, **options) -> Config:
        """Tune for these arguments and run the winner for them from now on; returns the winner.

        `force=True` skips tilefn's on-disk cache of tuned configs. With one fixed config (no
        `configs=` list), tuning searches the whole space, as Helion's does; with a list, among it.
        """
        args = self.jitted.flat(tuple(args), {})
        known = self.tuned.known_config(*args)
        if not force and known is not None and self.tuned.fixed is None:
            return Config.of(known)
        effort = options.pop("effort", None) or self.settings_value.autotune_effort
        if options:
            raise TypeError(f"{self.name}.autotune() got unsupported options {sorted(options)}")
        tuner = _Tuned(self.jitted, self.settings_value,
                       configs=self.configs if len(self.configs) > 1 else None,
                       effort="quick" if effort == "none" else effort, use_cache=not force, key=self.key)
        tuner.__name__ = self.name
        best = Config.of(tuner.best_config(*args))
        self.tuned.set_config(args, best)
        self._seen.discard(signature_key(args, {}))
        return best

    def specialization_key(self, args) -> tuple:
        """What a call with `args` is compiled (and tuned) for: tensor metadata and static values (and
        the kernel's `key(*args)`, when it has one)."""
        return self.tuned.config_key(self.jitted.flat(tuple(args), {}))

    def reset(self) -> None:
        """Forget traced programs, compiled kernels and tuned configs."""
        self.configure(self.settings_value)

    def __repr__(self):
        return f"<helion.kernel {self.name} (tilefn)>"


class BoundKernel:
    """A kernel and one argument signature (Helion's `kernel.bind(args)`)."""

    def __init__(self, kernel: Kernel, args: tuple):
        self.kernel, self.args = kernel, args
        self.fn, self.settings = kernel.fn, kernel.settings

    @property
    def config(self) -> Config | None:
        """The config calls with these arguments run, where known (fixed, tuned or chosen)."""
        known = self.kernel.tuned.known_config(*self.args) or self.kernel.tuned.fixed
        return Config.of(known)

    @property
    def config_spec(self) -> HelionConfigSpec:
        """What tuning searches for these arguments (`default_config()`, `block_sizes`, ...)."""
        jitted = self.kernel.jitted
        program, _ = jitted.trace_and_bind(self.args, {})
        return HelionConfigSpec(ConfigSpec.of(program, retrace=lambda t: jitted.trace_and_bind(self.args, {}, t)[0]))

    @property
    def env(self) -> BoundEnv:
        return BoundEnv(self.config_spec)

    def _config(self, config):
        if config is None:
            return self.config
        return Config.of(config)

    def lower(self, config=None):
        config = self._config(config)
        config = check_kernel(self.kernel.jitted, self.args, config)  # Helion's refusals and block_sizes
        return self.kernel.jitted.lower(*self.args, config=config)

    def to_triton_code(self, config=None, emit_repro_caller: bool = False, output_origin_lines=None) -> str:
        """The generated Triton source (kernel and launcher) for `config`, else the kernel's known
        config for these arguments, else the default heuristics. (Helion's `emit_repro_caller` and
        `output_origin_lines` annotate its own output; tilefn's source is the same either way.)"""
        return self.lower(config).source

    def compile_config(self, config=None):
        """A callable that runs under `config`: compiled once for these arguments' signature, and
        anew for a call whose signature differs (a new static value, say a seed or an eps, which
        the compiled kernel holds as a constant)."""
        config = self._config(config)
        jitted = self.kernel.jitted
        flat = jitted.flat(self.args, {})
        key = signature_key(flat, {})

        def compile_for(args):  # Helion's refusals, and its Config lists in tilefn's slots
            return jitted.lower(*args, config=check_kernel(jitted, args, config)).compile()

        compiled = compile_for(flat)

        def run(*args, **kwargs):
            args = jitted.flat(args, kwargs)  # one value per parameter, as the launcher takes them
            if signature_key(args, {}) == key:
                return compiled(*args)
            return compile_for(args)(*args)

        return run

    def set_config(self, config) -> None:
        self.kernel.tuned.set_config(self.args, Config.of(config))

    def autotune(self, args=None, force: bool = True, **options) -> Config:
        return self.kernel.autotune(self.args if args is None else args, force=force, **options)

    def __call__(self, *args):
        return self.kernel(*args)


def kernel(fn=None, *, config=None, configs=None, key=None, **settings):
    """`@helion.kernel`, `@helion.kernel()`, `@helion.kernel(config=..., autotune_effort=..., ...)`.
    `key`: a function of the arguments returning a hashable that also picks the config (Helion's)."""
    if config is not None and configs is not None:
        raise ValueError("helion.kernel: pass config= or configs=, not both")
    chosen = [config] if config is not None else list(configs or ())
    for c in chosen:
        if not isinstance(c, (TfnConfig, dict)):
            raise TypeError(f"helion.kernel: a config is a helion.Config (or dict), got {type(c).__name__}")
    built = Settings.build(**settings)

    def decorate(f):
        return Kernel(f, configs=chosen, settings=built, key=key)

    return decorate if fn is None else decorate(fn)


def aot_kernel(fn=None, *, config=None, configs=None, batched=None, collect_fn=None, measure_fn=None,
               key=None, **settings):
    """`@helion.aot_kernel()`: a kernel whose configs are chosen per argument signature, ahead of
    time in Helion, and here by tuning once per signature with the on-disk cache of tuned configs
    (`tfn.tune`'s table of shipped configs is tilefn's way to ship them). Helion's collect and
    measure phases (`batched`, `collect_fn`, `measure_fn`) have no counterpart: given, they warn."""
    given = [n for n, v in (("batched", batched), ("collect_fn", collect_fn), ("measure_fn", measure_fn))
             if v is not None]
    if given:
        import warnings

        warnings.warn(f"helion.aot_kernel: {given} have no effect in tilefn (configs are tuned per "
                      "signature and cached)", stacklevel=2)
    return kernel(fn, config=config, configs=configs, key=key, **settings)


__all__ = ["kernel", "aot_kernel", "Kernel", "BoundKernel"]
