"""Benchmarking candidates: compile, check against a trusted output, time; failures are skipped.

On several devices (`tilefn.tune.devices`) a prefetched batch is timed concurrently, one candidate
per device at a time, each as its compilation finishes; `settle` re-times the fastest few on the
home device (the inputs'), so the winner and its time are the home device's, as on one device."""
from __future__ import annotations

import logging
import math
import statistics
import threading
import time

import attrs
import torch

from ..config import Config
from ..interpret import interpret
from ..lower import backend
from ..rng import same_draws
from .devices import best_retimed, time_all
from .replicas import Replica, movable, on_device, tune_devices
from .workers import compile_all

log = logging.getLogger("tilefn.tune")
COMPILE_TIMEOUT = 60.0  # seconds for one batch of parallel compilations
RETIMED = 3  # candidates timed on other devices that are timed again on the home device


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
    interpreter's) before it is timed. `devices`: where candidates are timed (default
    `tilefn.tune.replicas.tune_devices`); the arguments are copied to each once, here.
    """

    def __init__(self, jitted, args, trusted_config: Config, repetitions: int = 5, reference=None, devices=None):
        self.jitted, self.repetitions = jitted, repetitions
        # every tensor the kernel could write: arguments, and those inside lists, tuples and functions
        self.home = Replica.of(jitted.flat(tuple(args), {}))
        self.args, self.inputs = self.home.args, self.home.inputs
        self.cuda = any(t.is_cuda for t in self.inputs)
        self.reasons: dict[str, tuple[int, str]] = {}  # why candidates failed -> (how many, the first)
        self.broken: set = set()  # configs whose compilation failed or hung in a worker
        self.prefetched: set = set()
        self.timed: dict = {}  # config -> seconds, of configs a prefetch timed on the devices
        self._host = threading.Lock()  # lowering and checked runs: one thread at a time (tracing, seeds)
        expected = self._trusted(trusted_config) if reference is None else self._referenced(reference)
        self.home = attrs.evolve(self.home, expected=expected)
        self.replicas = self._replicas(tune_devices(self.home.device) if devices is None else devices)

    @property
    def expected(self) -> list:
        """The trusted outputs, then the inputs as the trusted run left them (on the home device)."""
        return self.home.expected

    @property
    def spread(self) -> bool:
        """Whether candidates are timed elsewhere than on the home device alone."""
        return self.replicas != [self.home]

    def _replicas(self, devices) -> list[Replica]:
        """A replica per device (the home one itself first where it is listed); only the home one
        when the kernel reads tensors a copy of the arguments would not move."""
        if list(devices) == [self.home.device] or not movable(self.jitted.trace_and_bind(self.args, {})[0]):
            return [self.home]
        replicas, home_used = [], False
        for device in devices:
            reuse = torch.device(device) == self.home.device and not home_used
            home_used |= reuse
            replicas.append(self.home if reuse else self.home.on(torch.device(device)))
        return replicas

    def restore(self):
        """Put back the inputs as they were before tuning touched them."""
        self.home.restore()

    def _trusted(self, config: Config):
        """The trusted outputs; the inputs are restored afterwards, even when interrupted (Ctrl-C)."""
        self._compile([config])  # (a worker first: a compiler hang costs the timeout)
        self.prefetched.add(config)
        try:
            self.restore()
            try:
                if config in self.broken:
                    raise RuntimeError("the trusted config did not compile")
                with same_draws(self.args):
                    out = self.jitted.lower(*self.args, config=config).compile()(*self.args)
            except Exception:  # the default failed: fall back to the reference semantics
                self.restore()
                with same_draws(self.args):
                    out = interpret(self.jitted, config=config)(*self.args)
            return [t.clone() for t in _observed(out, self.home)]
        finally:
            self.restore()

    def _referenced(self, reference):
        """What `reference(*args)` returns and leaves in the arguments (which are restored afterwards)."""
        try:
            self.restore()
            return [t.clone() for t in _observed(reference(*self.args), self.home)]
        finally:
            self.restore()

    def prefetch(self, configs) -> None:
        """Compile `configs` in worker processes, in parallel and under a timeout (CUDA only: the
        interpreter compiles nothing), so that a compiler hang costs the timeout, not the tuning;
        on several devices, also time each on the first free device once it has compiled."""
        configs = [c for c in dict.fromkeys(configs) if c not in self.prefetched]
        if not configs:
            return
        self.prefetched.update(configs)
        if self.spread:
            self.timed.update(time_all(self.replicas, self._evaluate, lambda ready: self._compile(configs, ready)))
        else:
            self._compile(configs)

    def _compile(self, configs, ready=lambda config: None) -> None:
        """Compile `configs` in workers (CUDA only), marking the failed ones broken and calling
        `ready(config)` for each other one once all its launches have compiled."""
        if not self.cuda:
            for config in configs:
                ready(config)
            return
        jobs, owners = [], []  # a job per launch (one per tl.barrier() phase), and its config
        for config in configs:
            try:
                launches = self.jitted.lower(*self.args, config=config).compile_jobs() or [None]
            except Exception:
                launches = [None]  # fails again, and is reported, when evaluated
            jobs += launches
            owners += [config] * len(launches)
        left = {config: owners.count(config) for config in configs}

        def done(i: int, ok: bool) -> None:
            config = owners[i]
            if not ok:
                self.broken.add(config)
            left[config] -= 1
            if not left[config] and config not in self.broken:
                ready(config)

        compile_all(jobs, timeout=COMPILE_TIMEOUT, on_done=done)

    def __call__(self, config: Config) -> float:
        self.prefetch([config])  # (one the search did not prefetch)
        if config in self.timed:
            return self.timed[config]
        if config in self.broken:
            return self._skip(config, "failed or timed out compiling in a worker")
        return self._evaluate(self.home, config)

    def settle(self, timings) -> tuple[float, Config]:
        """(seconds, config) of the winner among `timings` ((config, seconds) in evaluation order): the
        fastest; when timed on several devices, the fastest of the RETIMED best timed again at home."""
        if not self.spread:
            config, seconds = min(timings, key=lambda t: t[1])
            return seconds, config
        return best_retimed(timings, lambda config: self._evaluate(self.home, config), RETIMED)

    def _evaluate(self, replica: Replica, config: Config) -> float:
        """Run `config` on `replica`'s device, check its outputs, and time it (math.inf: skipped)."""
        try:
            with self._host:
                run = self.jitted.lower(*replica.args, config=config).compile()
                with on_device(replica.device):
                    replica.restore()
                    with same_draws(replica.args):  # a kernel's own random draws repeat the trusted run's
                        out = run(*replica.args)
                    right = _close(_observed(out, replica), replica.expected)
            if not right:
                return self._skip(config, "gave a wrong result (vs the trusted output)")
            with on_device(replica.device):
                return self._time(run, replica.args)
        except Exception as exc:  # a config the compiler rejects or that crashes is skipped
            return self._skip(config, f"raised {type(exc).__name__}", (str(exc).splitlines() or [""])[0])

    def _skip(self, config: Config, reason: str, detail: str = "") -> float:
        """Log and count a failed candidate under `reason`, keeping the first one's config and detail."""
        log.info("skipped %s: %s%s", config, reason, f": {detail}" if detail else "")
        with self._host:  # (device threads skip concurrently)
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

    def _time(self, run, args) -> float:
        if self.cuda:
            return backend.do_bench(lambda: run(*args), warmup=5, rep=20, return_mode="median") * 1e-3
        samples = []
        for _ in range(self.repetitions):
            start = time.perf_counter()
            run(*args)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)


def _observed(out, replica: Replica) -> list:
    """What a run produces: its outputs, then every tensor argument (a kernel may write its inputs)."""
    return _tensors(out) + replica.inputs
