"""`tfn.tune(jit(kernel))`: pick the fastest correct Config per argument signature, once."""
from __future__ import annotations

import hashlib
import random
import time

import torch

from .. import torch_op
from ..config import Config
from ..jit import _compiling, as_traceable
from ..dynamic_guard import dynamic_guard
from ..fast_path import MISS
from ..guard_source import also_checking
from ..signature_cache import CacheInfo, SignatureCache, checked_too, signature_key
from ..trace.dynamic import size_buckets
from ..traced import refuse_nested_call
from . import cache, table as tables
from .benchmark import Benchmarker
from .progress import TuningProgress
from .search import SEARCHES
from .spec import ConfigSpec

# evaluations per effort; the CPU interpreter is ~1000x slower, so its budgets are smaller
BUDGETS = {"cuda": {"none": 1, "quick": 30, "full": 150}, "cpu": {"none": 1, "quick": 6, "full": 24}}
# seconds from a tuning's start past which no new config is evaluated (an evaluation as long as the average
# one would end past it): quick tuning takes at most ~30 s with the last compile; the H200 measured softmax's
# 30 configs at 40 s, its backward's at 168 s, and a 25 s limit counted from after the first compile at 34 s
TIME_LIMITS = {"cuda": {"quick": 24.0}, "cpu": {}}


class TunedFunction:
    """Tunes on the first call per signature; later calls run the winner with jit's overhead.

    Hooks for front ends: override `pick_config(args)` to change how a new signature's config is
    picked; `set_config(args, config)` fixes one; `known_config(*args)` and `signatures()` say
    what is chosen so far.
    """

    def __init__(self, jitted, effort: str = "quick", search: str = "default", configs=None,
                 use_cache: bool = True, seed: int = 0, verbose: bool = True, table=None, reference=None,
                 key=None):
        if effort not in BUDGETS["cuda"]:
            raise ValueError(f"effort must be one of {sorted(BUDGETS['cuda'])}, got {effort!r}")
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {sorted(SEARCHES)}, got {search!r}")
        self.jitted = as_traceable(jitted)
        self.effort, self.search, self.configs = effort, search, list(configs) if configs else None
        self.use_cache, self.seed, self.verbose = use_cache, seed, verbose
        self.reference = reference  # f(*args) -> the outputs candidates must match (None: the default config's)
        self.key_fn = key  # f(*args) -> a hashable that also picks the config (None: the signature alone)
        self.shipped = tables.read(table)  # configs a library ships: used as they are, never tuned
        self._configs = SignatureCache()  # signature key -> the Config its calls run
        self._rows: dict[tuple, tuple] = {}  # signature key -> (device name, signature text)
        self._executables = SignatureCache()
        self._tunings = 0  # searches run (a shipped, cached or set config runs none)
        self.__name__ = getattr(self.jitted, "__name__", "kernel")
        self._op_index = torch_op.register(self)

    def best_config(self, *args) -> Config:
        """The winning Config for these arguments (tuning now if this signature is new)."""
        args = self.jitted.flat(args, {})
        return self._configs.get_or_make(self.config_key(args), lambda: self.pick_config(args))

    def known_config(self, *args) -> Config | None:
        """The Config calls with these arguments run, if one is picked or set already (never tunes)."""
        args = self.jitted.flat(args, {})
        return self._configs.get(self.config_key(args))

    def set_config(self, args, config: Config) -> None:
        """Run `config` for `args`' signature from now on (instead of what was picked or tuned)."""
        args = self.jitted.flat(tuple(args), {})
        self._configs.set(self.config_key(args), config)
        self._executables.discard(self._executable_key(args))

    def config_key(self, args) -> tuple:
        """What picks a config for flat `args`: their signature key (of a static_shapes=False kernel: its
        dynamic key and the size buckets, each size rounded up to a power of two), and `key(*args)` when given."""
        if self.jitted.static_shapes:
            key = signature_key(args, {})
        else:
            key = (self.jitted.resolved_key(args), size_buckets(args))
        return key if self.key_fn is None else (key, self.key_fn(*args))

    def _executable_key(self, args, settled: bool = False) -> tuple:
        """The jit's key (signature, captured values, static floats; `settled`: after tracing, see settled_key);
        of a dynamic kernel, one executable per config (buckets with one config share it)."""
        key = self.jitted.settled_key(args) if settled else self.jitted.key(args)
        if not self.jitted.static_shapes:
            key = (self.jitted.resolved_key(args), self.best_config(*args))
        return key if self.key_fn is None else (key, self.key_fn(*args))

    def _fast_guard(self, args):
        """The fast path's check: of a dynamic kernel, the jit's and the same size buckets; the same argument
        values where host code reads them (`TracedFunction.value_check`)."""
        values = self.jitted.value_check(args)
        if self.jitted.static_shapes:
            return checked_too(None, values, args, self.jitted.static)
        buckets, check = size_buckets(args), dynamic_guard(args, self.jitted.matching_guards(args),
                                                           self.jitted.guard_check(args), self.jitted.static)
        return checked_too(also_checking(check, lambda a: size_buckets(a) == buckets), values, args, self.jitted.static)

    def signatures(self) -> list:
        """The signature keys (`tilefn.signature_cache.signature_key`) with a config so far, oldest first."""
        return self._configs.keys()

    def pick_config(self, args) -> Config:
        """How a new signature's config is picked (once per signature; override to change it): the
        shipped table's, else the on-disk cache's (if it still lowers), else the search's."""
        device = next((a.device for a in args if isinstance(a, torch.Tensor)), torch.device("cpu"))
        row = self._rows[self.config_key(args)] = (cache.device_name(device),
                                                   tables.signature_text(args, not self.jitted.static_shapes))
        shipped = tables.lookup(self.shipped, *row)
        if shipped is not None:
            return shipped
        program, _ = self.jitted.trace_and_bind(args, {})
        spec = ConfigSpec.of(program, retrace=lambda tunables: self.jitted.trace_and_bind(args, {}, tunables)[0])
        cache_key = cache.cache_key(program, device) + f"-{self.effort}-{self.search}"
        if self.configs:  # a stable digest: hash() of strings differs from one process to the next
            cache_key += "-" + hashlib.sha256(repr(self.configs).encode()).hexdigest()[:16]
        if self.key_fn is not None:  # each key value is tuned (and cached) on its own
            cache_key += "-key" + hashlib.sha256(repr(self.key_fn(*args)).encode()).hexdigest()[:16]
        best = cache.load(cache_key, check=lambda c: self.jitted.lower(*args, config=c)) if self.use_cache else None
        if best is None:
            best = self._search(spec, args, device, cache_key)
        return best

    def cache_info(self) -> CacheInfo:
        """Programs traced, executables compiled for calls and searches run so far (candidates a
        search compiles are not counted: they are the search's)."""
        return CacheInfo(self.jitted.cache_info().traces, len(self._executables), self._tunings)

    def table(self) -> dict:
        """The configs found so far as a shipped-config table (`tfn.tune(fn, table=...)` reads it)."""
        out: dict = {}
        for key, (device, signature) in self._rows.items():
            out.setdefault(device, {})[signature] = self._configs.get(key).to_fields()
        return out

    def def_vjp(self, bwd, fwd=None):
        """Give the kernel a backward (see JitFunction.def_vjp)."""
        return self.jitted.def_vjp(bwd, fwd)

    def __call__(self, *args, **kwargs):
        if _compiling():  # torch.compile: one graph node, the kernel's custom op (tilefn.torch_op)
            return torch_op.entry(self._op_index, *args, **kwargs)
        if kwargs or len(args) != self.jitted.arity:
            args = self.jitted.flat(args, kwargs)
        fast = self._executables.fast
        if fast is not None and (out := fast(args)) is not MISS:
            return out
        if torch_op.grad_needed(args):
            return torch_op.entry(self._op_index, *args)
        return self.run(*args)

    def run(self, *args):
        """The call itself, on flat arguments: tune once per signature, launch (no custom op, no autograd)."""
        fast = self._executables.fast
        if fast is not None and (out := fast(args)) is not MISS:
            return out
        refuse_nested_call(self.jitted)
        key = self._executable_key(args)
        executable = self._executables.get(key)
        if executable is None:
            key = self._executable_key(args, settled=True)
            executable = self._executables.get_or_make(key, lambda: self._compile(args))
        if self.key_fn is None and not any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
            self._executables.remember(args, executable, self.jitted.captures_unchanged(),  # (grads go by the op)
                                       self.jitted.static, self._fast_guard(args))
        return executable(*args)

    def _compile(self, args):
        config = self.best_config(*args)
        self.jitted.note_compile(args)
        return self.jitted.lower(*args, config=config).compile()

    def _search(self, spec: ConfigSpec, args, device, cache_key) -> Config:
        kind = "cuda" if device.type == "cuda" else "cpu"
        budget, limit_s = BUDGETS[kind][self.effort], TIME_LIMITS[kind].get(self.effort)
        if self.effort == "none" and not self.configs:
            return spec.default()
        self._tunings += 1
        start = time.monotonic()
        bench = Benchmarker(self.jitted, args, spec.default(), reference=self.reference)
        evaluate = TuningProgress(bench, self.__name__, budget if not self.configs else len(self.configs), self.verbose,
                                  seconds=None if self.configs else limit_s, started=start)
        try:
            if self.configs:
                bench.prefetch(self.configs)
                timings = [(c, evaluate(c)) for c in self.configs]
            else:
                timings = SEARCHES[self.search](spec, evaluate, budget, random.Random(self.seed)).history
            seconds, best = bench.settle(timings)  # (several devices: the best few re-timed here)
        finally:
            evaluate.close()  # the live bar ends even when the search is interrupted
            bench.restore()
        if seconds == float("inf"):
            raise RuntimeError(f"tilefn.tune: no candidate config of {self.__name__} ran correctly: "
                               f"{bench.failure_summary()}")
        if self.use_cache:
            cache.store(cache_key, best, seconds, None if self.jitted.static_shapes else tables.signature_text(args, True))
        stopped = evaluate.count < budget and evaluate.out_of_time()
        limit = f", stopped at the {evaluate.seconds:.0f} s limit" if stopped else ""
        evaluate.close(f"tilefn.tune: {self.__name__}: {evaluate.count} configs in {evaluate.elapsed():.1f} s"
                       f"{limit}, best {seconds * 1e3:.3f} ms ({bench.failures} skipped); its Config:", best)
        return best


def tune(fn, effort: str = "quick", search: str = "default", configs=None, use_cache: bool = True,
         seed: int = 0, verbose: bool = True, table=None, reference=None, key=None) -> TunedFunction:
    """A tuned version of `fn` (a function or a `tfn.jit` kernel): see TunedFunction.

    `table`: shipped configs (a mapping or a JSON file from `TunedFunction.table()`, see
    `tilefn.tune.table`); a signature it lists on this device runs its config without tuning.
    `reference`: a function of the kernel's arguments (eager PyTorch, say) whose outputs, and the
    arguments it leaves, every candidate must match; default: what the default config computes.
    `key`: a function of the kernel's arguments returning a hashable; calls whose signature and key
    agree share a config (a new key value tunes again), as Helion's `key=`.
    """
    return TunedFunction(fn, effort, search, configs, use_cache, seed, verbose, table, reference, key)
