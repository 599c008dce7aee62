"""Search strategies: plain functions over a ConfigSpec and an `evaluate(config) -> seconds` callback.

Each returns a `SearchResult`; `evaluate` returns math.inf for configs that fail to compile, crash
or compute a wrong answer. Budgets count evaluations (each distinct config is evaluated once).
"""
from __future__ import annotations

import math
import random
from typing import Callable

import attrs

from ..config import Config
from ..trace.queries import dot_roles, kernel_eqns
from .spec import ConfigSpec, set_value


@attrs.frozen
class SearchResult:
    best: Config
    time: float
    history: tuple  # (config, time) in evaluation order


class _Memo:
    """Evaluates each config once and stops spending at the budget, or once the evaluator says its time is
    up (`evaluate.out_of_time()`, where it has one: `TuningProgress`'s time limit)."""

    def __init__(self, evaluate: Callable[[Config], float], budget: int):
        self.evaluate, self.budget, self.seen = evaluate, max(budget, 1), {}
        self._out_of_time = getattr(evaluate, "out_of_time", None)

    @property
    def exhausted(self) -> bool:
        return len(self.seen) >= self.budget or (self._out_of_time is not None and bool(self.seen)
                                                 and self._out_of_time())

    def out_of_time(self) -> bool:
        """(A memo evaluating through this one stops with it.)"""
        return self.exhausted

    def prefetch(self, configs) -> None:
        """Let the evaluator prepare (compile in parallel) the unseen configs about to be evaluated."""
        if self.exhausted:
            return
        fresh = [c for c in dict.fromkeys(configs) if c not in self.seen][: max(self.budget - len(self.seen), 0)]
        prefetch = getattr(self.evaluate, "prefetch", None)
        if prefetch is not None and fresh:
            prefetch(fresh)

    def __call__(self, config: Config) -> float:
        if config not in self.seen:
            if self.exhausted:
                return math.inf
            self.seen[config] = self.evaluate(config)
        return self.seen[config]

    def result(self) -> SearchResult:
        best = min(self.seen.items(), key=lambda item: item[1])
        return SearchResult(best[0], best[1], tuple(self.seen.items()))


def random_search(spec: ConfigSpec, evaluate, budget: int, rng: random.Random) -> SearchResult:
    memo = _Memo(evaluate, budget)
    candidates = [spec.default()]
    for _ in range(budget * 4):
        if len(set(candidates)) >= budget:
            break
        try:
            candidates.append(spec.random(rng))
        except ValueError:
            continue
    memo.prefetch(candidates)
    for candidate in candidates:
        memo(candidate)
    return memo.result()


def pattern_search(spec: ConfigSpec, evaluate, budget: int, rng: random.Random, seeds=None) -> SearchResult:
    """Hill-climb: evaluate every neighbour of the best config, then move to the better of the best
    improving neighbour and the pattern move that takes every improving knob step at once."""
    memo = _Memo(evaluate, budget)
    seeds = list(seeds) if seeds else [spec.default()]
    memo.prefetch(seeds)
    for seed in seeds:
        memo(seed)
    best = min(seeds, key=memo)
    while not memo.exhausted:
        neighbors = spec.neighbors(best)
        rng.shuffle(neighbors)
        memo.prefetch(neighbors)
        improving = sorted((c for c in neighbors if memo(c) < memo(best)), key=memo, reverse=True)
        if not improving:
            break
        step, combined = improving[-1], _pattern_move(spec, best, improving)
        best = combined if combined is not None and memo(combined) < memo(step) else step
    return memo.result()


def _pattern_move(spec: ConfigSpec, best: Config, improving: list) -> Config | None:
    """`best` with each knob set as its most improving neighbour sets it (None if it doesn't fit)."""
    values = spec.values(best)
    for candidate in improving:  # worst first, so the best step on each knob wins
        for knob in spec.knobs:
            if knob.get(candidate) != knob.get(best):
                set_value(values, knob, knob.get(candidate))
    combined = spec.build(values, base=best)
    return combined if len(improving) > 1 and spec.fits(combined) else None


def differential_evolution(spec: ConfigSpec, evaluate, budget: int, rng: random.Random,
                           population: int = 8, crossover: float = 0.7) -> SearchResult:
    """DE over knob positions: mutant = a + (b - c) per knob, clamped to the domain."""
    memo = _Memo(evaluate, budget)

    def positions(config):
        return [k.choices.index(k.nearest(k.get(config))) for k in spec.knobs]

    def config_of(pos):
        values = {}
        for knob, p in zip(spec.knobs, pos):
            set_value(values, knob, knob.choices[max(0, min(len(knob.choices) - 1, p))])
        return spec.normalize(spec.build(values))

    pool = [spec.default()]
    for _ in range(population * 20):  # (a space whose random configs all fail to normalize: stop trying)
        if len(pool) >= population:
            break
        try:
            pool.append(spec.random(rng))
        except ValueError:
            continue
    while len(pool) < 3:
        pool.append(pool[0])
    memo.prefetch(pool)
    for member in pool:
        memo(member)
    stalled = 0  # generations in a row that evaluated nothing new: the space is exhausted or converged
    while not memo.exhausted and stalled < 3:
        evaluated = len(memo.seen)
        for i, member in enumerate(pool):
            a, b, c = rng.sample(pool, 3)
            pa, pb, pc, pm = positions(a), positions(b), positions(c), positions(member)
            trial = [pa[j] + (pb[j] - pc[j]) if rng.random() < crossover else pm[j] for j in range(len(pm))]
            try:
                candidate = config_of(trial)
            except ValueError:
                continue
            if candidate in memo.seen:  # a converged pool proposes known configs: step off them
                fresh = [n for n in spec.neighbors(candidate) if n not in memo.seen]
                candidate = rng.choice(fresh) if fresh else candidate
            if memo(candidate) <= memo(member):
                pool[i] = candidate
            if memo.exhausted:
                break
        stalled = stalled + 1 if len(memo.seen) == evaluated else 0
    return memo.result()


def seeded_pattern_search(spec: ConfigSpec, evaluate, budget: int, rng: random.Random) -> SearchResult:
    """The default: the heuristic config and its coarse variants as seeds, then hill-climbing;
    budget left after convergence goes to hill-climbs from random restarts (only `full` has any).

    Seeds are cheap, usually-good starting points (the heuristic, twice/half its warps, looped
    rows, classic matrix-product tilings), so most of the budget refines near a good config.
    """
    seeds = [spec.default()]
    for variant in _coarse_variants(spec):
        try:
            seeds.append(spec.normalize(variant))
        except ValueError:
            continue
    memo = _Memo(evaluate, budget)
    climb = pattern_search(spec, memo, budget, rng, seeds=list(dict.fromkeys(seeds)))
    stalls = 0
    while not memo.exhausted and stalls < 8:  # stop once restarts find nothing new to try
        try:
            start = spec.random(rng)
        except ValueError:
            stalls += 1
            continue
        before = len(memo.seen)
        pattern_search(spec, memo, budget - before, rng, seeds=[start, climb.best])
        stalls = stalls + 1 if len(memo.seen) == before else 0
    return memo.result()


MATMUL_TILES = ((128, 256, 64, 8, 3), (256, 128, 64, 8, 3), (128, 128, 64, 4, 4), (128, 128, 128, 8, 3),
                (64, 256, 64, 4, 4), (128, 64, 64, 4, 4))  # (m, n, k, warps, stages): Triton's usual picks


def _coarse_variants(spec: ConfigSpec):
    base = spec.default()
    roles = dot_roles(kernel_eqns(spec.program))
    by_role = {role: block for block, role in roles.items()}
    if {"m", "n", "k"} <= by_role.keys():
        for i, (m, n, k, warps, stages) in enumerate(MATMUL_TILES):
            values = spec.values(base)
            for role, size in (("m", m), ("n", n), ("k", k)):
                values.setdefault("block_sizes", {})[by_role[role]] = size
            for knob in spec.knobs:
                if knob.field == "l2_groupings" and 8 in knob.choices:
                    set_value(values, knob, 8)
            tiling = attrs.evolve(spec.build(values), num_warps=warps, num_stages=stages)
            yield tiling
            if i == 0:  # the best tiling on H100 also with TMA loads and a persistent grid
                yield _with_tma(spec, tiling)
    for warps in (base.num_warps // 2, base.num_warps * 2):
        if warps >= 1:
            yield attrs.evolve(base, num_warps=warps)
    loops = [k for k in spec.knobs if k.field == "reduction_loops"]
    if loops:
        values = spec.values(base)
        for knob in loops:
            values.setdefault("reduction_loops", {})[knob.index] = knob.choices[-1]
        yield spec.build(values)


def _with_tma(spec: ConfigSpec, config: Config) -> Config:
    """`config` with tensor descriptors wherever the spec offers them, and a persistent interleaved grid
    whose loop is flattened with the inner loops where the spec offers that."""
    values = spec.values(config)
    for knob in spec.knobs:
        if knob.field == "indexing" and "tensor_descriptor" in knob.choices:
            set_value(values, knob, "tensor_descriptor")
        if knob.field == "pid_type":
            set_value(values, knob, next(c for c in knob.choices[::-1] if c.startswith("persistent_interleaved")))
    return spec.build(values, base=config)


SEARCHES = {"random": random_search, "pattern": pattern_search, "de": differential_evolution,
            "default": seeded_pattern_search}
