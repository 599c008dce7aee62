"""Benchmarking candidates: compile, check against a trusted output, time; failures are skipped."""
from __future__ import annotations

import logging
import math
import statistics
import time

import torch

from ..config import Config
from ..interpret import interpret
from ..lower import backend
from ..rng import same_draws
from ..trace.arguments import tensor_leaves
from .workers import compile_all

log = logging.getLogger("tilefn.tune")
COMPILE_TIMEOUT = 60.0  # seconds for one batch of parallel compilations


def _tensors(tree):
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, (tuple, list)):
        return [t for item in tree for t in _tensors(item)]
    return []


# (atol, rtol) between configs: a sum in another order may round to the neighbouring half or float8 value
_TOLERANCES = {torch.float16: (2e-2, 2e-2), torch.bfloat16: (2e-2, 2e-2), torch.float8_e4m3fn: (2e-2, 0.13),
               torch.float8_e5m2: (2e-2, 0.26)}


def _close(got, want) -> bool:
    got, want = _tensors(got), _tensors(want)
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if g.shape != w.shape or g.dtype != w.dtype:
            return False
        if w.dtype.is_floating_point:
            atol, rtol = _TOLERANCES.get(w.dtype, (1e-4, 1e-4))
            if not torch.allclose(g.float(), w.float(), atol=atol, rtol=rtol, equal_nan=True):
                return False
        elif not torch.equal(g, w):
            return False
    return True


class Benchmarker:
    """`benchmarker(config) -> seconds` for one kernel and one set of arguments.

    Inputs the kernel mutates are restored before every run; every candidate's outputs must match
    the trusted outputs (`reference(*args)`'s if given, else the default config's, or the reference
    interpreter's) before it is timed.
    """

    def __init__(self, jitted, args, trusted_config: Config, repetitions: int = 5, reference=None):
        self.jitted, self.args, self.repetitions = jitted, jitted.flat(tuple(args), {}), repetitions
        # every tensor the kernel could write: arguments, and those inside lists, tuples and functions
        self.inputs = [t for a in self.args for _, _, t in tensor_leaves(a, "arg")]
        self.saved = [t.clone() for t in self.inputs]
        self.cuda = any(t.is_cuda for t in self.inputs)
        self.reasons: dict[str, tuple[int, str]] = {}  # why candidates failed -> (how many, the first)
        self.broken: set = set()  # configs whose compilation failed or hung in a worker
        self.prefetched: set = set()
        self.expected = self._trusted(trusted_config) if reference is None else self._referenced(reference)

    def restore(self):
        """Put back the inputs as they were before tuning touched them."""
        self._restore()

    def _restore(self):
        for tensor, saved in zip(self.inputs, self.saved):
            tensor.copy_(saved)

    def _trusted(self, config: Config):
        """The trusted outputs; the inputs are restored afterwards, even when interrupted (Ctrl-C)."""
        self.prefetch([config])  # (a worker first: a compiler hang costs the timeout)
        try:
            self._restore()
            try:
                if config in self.broken:
                    raise RuntimeError("the trusted config did not compile")
                with same_draws(self.args):
                    out = self.jitted.lower(*self.args, config=config).compile()(*self.args)
            except Exception:  # the default failed: fall back to the reference semantics
                self._restore()
                with same_draws(self.args):
                    out = interpret(self.jitted, config=config)(*self.args)
            return [t.clone() for t in self._observed(out)]
        finally:
            self._restore()

    def _referenced(self, reference):
        """What `reference(*args)` returns and leaves in the arguments (which are restored afterwards)."""
        try:
            self._restore()
            return [t.clone() for t in self._observed(reference(*self.args))]
        finally:
            self._restore()

    def _observed(self, out) -> list:
        """What a run produces: its outputs, then every tensor argument (a kernel may write its inputs)."""
        return _tensors(out) + self.inputs

    def prefetch(self, configs) -> None:
        """Compile `configs` in worker processes, in parallel and under a timeout (CUDA only: the
        interpreter compiles nothing), so that a compiler hang costs the timeout, not the tuning."""
        configs = [c for c in dict.fromkeys(configs) if c not in self.prefetched]
        if not self.cuda or not configs:
            return
        self.prefetched.update(configs)
        jobs, owners = [], []  # a job per launch (one per tl.barrier() phase), and its config
        for config in configs:
            try:
                launches = self.jitted.lower(*self.args, config=config).compile_jobs() or [None]
            except Exception:
                launches = [None]  # fails again, and is reported, when evaluated
            jobs += launches
            owners += [config] * len(launches)
        for config, ok in zip(owners, compile_all(jobs, timeout=COMPILE_TIMEOUT)):
            if not ok:
                self.broken.add(config)

    def __call__(self, config: Config) -> float:
        self.prefetch([config])  # (one the search did not prefetch)
        if config in self.broken:
            return self._skip(config, "failed or timed out compiling in a worker")
        try:
            run = self.jitted.lower(*self.args, config=config).compile()
            self._restore()
            with same_draws(self.args):  # a kernel's own random draws repeat the trusted run's
                out = run(*self.args)
            if not _close(self._observed(out), self.expected):
                return self._skip(config, "gave a wrong result (vs the trusted output)")
            return self._time(run)
        except Exception as exc:  # a config the compiler rejects or that crashes is skipped
            return self._skip(config, f"raised {type(exc).__name__}", (str(exc).splitlines() or [""])[0])

    def _skip(self, config: Config, reason: str, detail: str = "") -> float:
        """Log and count a failed candidate under `reason`, keeping the first one's config and detail."""
        log.info("skipped %s: %s%s", config, reason, f": {detail}" if detail else "")
        count, kept = self.reasons.get(reason, (0, f"{config}: {detail}" if detail else str(config)))
        self.reasons[reason] = (count + 1, kept)
        return math.inf

    @property
    def failures(self) -> int:
        """How many candidates failed."""
        return sum(count for count, _ in self.reasons.values())

    def failure_summary(self) -> str:
        """Why candidates failed: each reason with its count and its first case."""
        return "; ".join(f"{count} {reason}, first {kept}" for reason, (count, kept) in self.reasons.items())

    def _time(self, run) -> float:
        if self.cuda:
            return backend.do_bench(lambda: run(*self.args), warmup=5, rep=20, return_mode="median") * 1e-3
        samples = []
        for _ in range(self.repetitions):
            start = time.perf_counter()
            run(*self.args)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)
