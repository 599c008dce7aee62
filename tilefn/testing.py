"""Property testing for tile kernels: hypothesis strategies and a three-way agreement check.

    from hypothesis import given, strategies as st
    import tilefn.testing as tt

    @given(st.data())
    def test_my_softmax(data):
        x = data.draw(tt.tensors(tt.shapes(2, max_side=40)))
        config = data.draw(tt.configs(my_softmax, x))
        tt.assert_matches(my_softmax, lambda x: torch.softmax(x, 1), x, configs=[config])

`configs(kernel, *args)` draws Configs from the kernel's ConfigSpec (the tuner's search space):
the heuristic default, or a random config, then a few steps to neighbouring configs; it shrinks
towards the default. `assert_matches` runs the compiled kernel (Triton's interpreter for CPU
tensors), `tfn.interpret` (eager PyTorch, tile by tile) and the user's eager reference on copies
of the same arguments, and says which pair disagrees under which Config (printed as pasteable
`tfn.Config(...)`). Needs `hypothesis` (the `test` extra) for the strategies only.
"""
from __future__ import annotations

import random
from typing import Callable, Iterable

import torch

from .config import Config
from .interpret import interpret
from .jit import as_traceable
from .lower import backend
from .lower.lowered import lower
from .rng import same_draws
from .tune.spec import ConfigSpec

try:
    from hypothesis import strategies as st
except ImportError:  # assert_matches works without hypothesis; the strategies need it
    st = None

__all__ = ["spec_of", "configs", "sizes", "shapes", "tensors", "assert_matches", "compile_for_gpu", "TOLERANCES"]

# (atol, rtol) per output dtype: compiled and interpreted half-precision kernels compute in float32
# and round once per op, so they differ from each other and from eager PyTorch by a few ulps.
TOLERANCES = {torch.float64: (1e-9, 1e-9), torch.float32: (2e-4, 2e-4), torch.float16: (1e-2, 1e-2),
              torch.bfloat16: (4e-2, 4e-2), torch.float8_e4m3fn: (1e-2, 0.13), torch.float8_e5m2: (1e-2, 0.26)}
_FLOAT8 = (torch.float8_e4m3fn, torch.float8_e5m2)  # (compared as float32: torch compares no float8 within a tolerance)


def _strategies():
    if st is None:
        raise ImportError("tilefn.testing strategies need hypothesis: pip install 'tilefn[test]'")
    return st


def spec_of(kernel, *args) -> ConfigSpec:
    """The ConfigSpec (knobs and their domains) of `kernel` traced for `args`."""
    jitted = as_traceable(kernel)
    program, _ = jitted.trace_and_bind(args, {})
    return ConfigSpec.of(program, retrace=lambda tunables: jitted.trace_and_bind(args, {}, tunables)[0])


# --- strategies ------------------------------------------------------------------------------
def configs(kernel, *args, steps: int = 2, spec: ConfigSpec | None = None):
    """Configs from `kernel`'s ConfigSpec for `args`: the default or `spec.random(Random(seed))`
    with a drawn seed, then up to `steps` moves to a drawn neighbour. Shrinks towards the default."""
    s = _strategies()
    spec = spec if spec is not None else spec_of(kernel, *args)

    def random_config(seed):
        try:
            return spec.random(random.Random(seed))
        except ValueError:  # no repair for this draw
            return None

    start = s.one_of(s.just(spec.default()),
                     s.integers(0, 2 ** 32 - 1).map(random_config).filter(lambda c: c is not None))

    @s.composite
    def walk(draw):
        config = draw(start)
        for _ in range(draw(s.integers(0, steps))):
            options = spec.neighbors(config)
            if not options:
                break
            config = draw(s.sampled_from(options))
        return config

    return walk()


def sizes(min_value: int = 1, max_value: int = 64):
    """Dimension sizes: ragged ones (any integer) and powers of two (no masks), 1 included."""
    s = _strategies()
    powers = [1 << i for i in range(max_value.bit_length()) if min_value <= 1 << i <= max_value]
    ragged = s.integers(min_value, max_value)
    return s.one_of(ragged, s.sampled_from(powers)) if powers else ragged


def shapes(ndim: int = 2, min_side: int = 1, max_side: int = 64):
    """Tuples of `ndim` sizes (see `sizes`)."""
    s = _strategies()
    return s.tuples(*[sizes(min_side, max_side) for _ in range(ndim)])


def tensors(shape, dtype: torch.dtype = torch.float32, device="cpu", low: float = -3.0, high: float = 3.0):
    """Tensors of `shape` (a tuple or a strategy of tuples): standard normal values for floating
    dtypes, integers in [low, high] otherwise, random bools; built by torch from a drawn seed."""
    s = _strategies()
    shape_st = shape if isinstance(shape, s.SearchStrategy) else s.just(tuple(shape))

    def build(shape, seed):
        g = torch.Generator().manual_seed(seed)
        if dtype == torch.bool:
            t = torch.rand(shape, generator=g) > 0.5
        elif dtype.is_floating_point:
            t = torch.randn(shape, generator=g).to(dtype)
        else:
            lo = max(int(low), 0) if dtype == torch.uint8 else int(low)
            t = torch.randint(lo, int(high) + 1, shape, generator=g, dtype=dtype)
        return t.to(device)

    return s.builds(build, shape_st, s.integers(0, 2 ** 32 - 1))


# --- the check -------------------------------------------------------------------------------
def _flat(value) -> list:
    if value is None:
        return []
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flat(v)]
    return [value]


def _copy(args):
    return [a.clone() if isinstance(a, torch.Tensor) else a for a in args]


def _observe(fn, args) -> tuple[list, list]:
    """Run `fn` on copies of `args`: (its flattened outputs, the tensor arguments as it left them).

    An output that is one of the arguments (`return x.mul_(2)`) counts as a written argument only.
    """
    copies = _copy(args)
    with same_draws(copies):  # seeds a kernel draws from torch's generator repeat across runs
        out = fn(*copies)
    outputs = [o for o in _flat(out) if not any(o is a for a in copies)]
    return outputs, [a for a in copies if isinstance(a, torch.Tensor)]


def _compare(got: list, want: list, what: str, atol, rtol) -> None:
    if len(got) != len(want):
        raise AssertionError(f"{what}: {len(got)} outputs vs {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        if not isinstance(w, torch.Tensor) or not isinstance(g, torch.Tensor):
            if g != w:
                raise AssertionError(f"{what}: output {i}: {g!r} vs {w!r}")
            continue
        if g.dtype != w.dtype or g.shape != w.shape:
            raise AssertionError(f"{what}: output {i}: {g.dtype}{list(g.shape)} vs {w.dtype}{list(w.shape)}")
        g, w = g.detach().cpu(), w.detach().cpu()
        if not w.dtype.is_floating_point:
            if not torch.equal(g, w):
                raise AssertionError(f"{what}: output {i} differs in {(g != w).sum().item()} elements")
            continue
        default_atol, default_rtol = TOLERANCES.get(w.dtype, (2e-4, 2e-4))
        if w.dtype in _FLOAT8:
            g, w = g.float(), w.float()
        torch.testing.assert_close(g, w, atol=default_atol if atol is None else atol,
                                   rtol=default_rtol if rtol is None else rtol, equal_nan=True,
                                   msg=lambda m, i=i: f"{what}: output {i}: {m}")


def _config_list(jitted, args, configs) -> list:
    if configs is None:
        return [jitted.config if jitted.config is not None else spec_of(jitted, *args).default()]
    if isinstance(configs, Config):
        return [configs]
    if isinstance(configs, int):  # the default and `configs` seeded random draws from the spec
        spec = spec_of(jitted, *args)
        rng, out = random.Random(0), [spec.default()]
        for _ in range(configs * 4):
            if len(out) > configs:
                break
            try:
                candidate = spec.random(rng)
            except ValueError:
                continue
            if candidate not in out:
                out.append(candidate)
        return out
    return list(configs)


def assert_matches(kernel, reference: Callable, *args, configs: Iterable[Config] | Config | int | None = None,
                   atol: float | None = None, rtol: float | None = None, check_interpret: bool = True) -> None:
    """The compiled `kernel`, `tfn.interpret(kernel)` and eager `reference` agree on `args`.

    Each runs on its own copies of `args`; their outputs and the tensor arguments as they leave
    them are compared (so a kernel that writes an input in place needs a reference that does
    too; an output that is an argument counts as that argument). `configs`: a Config, a list of
    Configs, an int n (the default plus n seeded random configs from the kernel's ConfigSpec), or
    None (the kernel's own config, else the default). Integer and bool outputs must be equal;
    floating ones close within `atol`/`rtol` (default: per dtype, TOLERANCES). Raises
    AssertionError naming the Config and the disagreeing pair.
    """
    jitted = as_traceable(kernel)
    expected = _observe(reference, args)
    args = jitted.flat(args, {})  # what the compiled launcher takes: a value per parameter
    for config in _config_list(jitted, args, configs):
        try:
            flat = jitted.flat(tuple(args), {})  # (a compiled kernel takes one value per parameter)
            compiled = _observe(jitted.lower(*flat, config=config).compile(), flat)
        except Exception as exc:
            raise AssertionError(f"compiling or running {jitted.__name__} under {config} failed: "
                                 f"{type(exc).__name__}: {exc}") from exc
        runs = {"compiled": compiled}
        if check_interpret:
            runs["interpret"] = _observe(interpret(jitted, config=config), args)
        pairs = [(name, "reference") for name in runs] + ([("compiled", "interpret")] if check_interpret else [])
        failures = []
        for a, b in pairs:
            want = expected if b == "reference" else runs[b]
            for part, got, wanted in (("", runs[a][0], want[0]), (" (arguments after the call)", runs[a][1], want[1])):
                try:
                    _compare(got, wanted, f"{a} vs {b}{part}", atol, rtol)
                except AssertionError as exc:
                    failures.append(str(exc))
        if failures:
            if check_interpret and not any(f.startswith("interpret vs reference") for f in failures):
                failures.append("(tfn.interpret agrees with the reference: the compiled kernel is at fault)")
            raise AssertionError(f"{jitted.__name__} under {config}:\n  " + "\n  ".join(failures))


def compile_for_gpu(kernel, *args, config: Config | None = None, arch: int = 90):
    """Compile `kernel` for `args` (CPU tensors will do) as for an NVIDIA GPU of compute capability
    `arch`, with no GPU present: Triton's front end and ptxas run, nothing launches. Raises what the
    compiler raises; returns Triton's CompiledKernel (`.asm["ptx"]`, `.asm["ttgir"]`, ...)."""
    jitted = as_traceable(kernel)
    program, _ = jitted.trace_and_bind(args, {}, config.tunables if config is not None else None,
                                       config.block_sizes if config is not None else None)
    jobs = lower(program, config, interpret=False).compile_jobs()
    if not jobs:
        raise ValueError(f"{jitted.__name__} has no tile loops: no kernel to compile")
    compiled = [backend.launch().compile_offline(*job, arch=arch) for job in jobs]  # (each tl.barrier() phase)
    return compiled[0]
