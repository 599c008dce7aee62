"""tilefn's own `helion._testing`: the names Helion's examples and test files import from it.

Kernels really run and are compared with `torch.testing.assert_close` (`run_example`,
`code_and_output`); checks on generated-code text (`assertExpectedJournal`, `assertIn(..., code)`)
are no-ops, as tilefn's Triton differs from Helion's. Skip decorators follow a CPU-only Triton
backend: CUDA-only, tensor-descriptor and large-memory tests skip; other backends' marks do nothing.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import sys
import time
import unittest
from pathlib import Path
from typing import NamedTuple

import torch

from ..runtime.settings import _get_backend  # noqa: F401 - a re-exported name
from .compat_shim import supports_tensor_descriptor  # noqa: F401 - a re-exported name
from .outcomes import WrongResult

DEVICE = torch.device(os.environ.get("TILEFN_CONFORMANCE_DEVICE", "cpu"))  # cuda for GPU timing runs
HALF_DTYPE = torch.float16
LONG_INT_TYPE = torch.int64
PROJECT_ROOT = Path(".")
EXAMPLES_DIR = PROJECT_ROOT / "examples"


def configure(helion_root: Path) -> None:
    """Points PROJECT_ROOT / EXAMPLES_DIR at the Helion checkout under test."""
    global PROJECT_ROOT, EXAMPLES_DIR
    PROJECT_ROOT = Path(helion_root)
    EXAMPLES_DIR = PROJECT_ROOT / "examples"


def is_cuda() -> bool:
    return DEVICE.type == "cuda"


def get_test_dot_precision() -> str:
    return "ieee"


def get_test_float32_matmul_precision() -> str:
    """The torch float32 matmul precision the tests' references use (Triton's: "high")."""
    return "high"


@contextlib.contextmanager
def float32_matmul_precision(precision: str):
    """torch's float32 matmul precision set to `precision` inside the block, restored after."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


# --- running kernels ----------------------------------------------------------------------------
class GeneratedCode(str):
    """Generated source returned by `code_and_output`; TestCase's text asserts on it are no-ops."""

    def count(self, *args):
        return CodeCount(super().count(*args))


class CodeCount(int):
    """A count of a pattern in generated code; `assertEqual` on it is a no-op."""


def _config(kwargs):
    from tilefn.helion import Config

    return Config(**kwargs) if kwargs else None


def code_and_output(fn, args, **config):
    """(generated code, result) of running kernel `fn` on `args` under the config the kwargs give
    (else the kernel's own config, else tilefn's default)."""
    bound = fn.bind(tuple(args))
    cfg = _config(config)
    code = GeneratedCode(bound.to_triton_code(cfg))
    return code, bound.compile_config(cfg)(*args)


def output_only(fn, args, **config):
    return code_and_output(fn, args, **config)[1]


def _clone(value):
    return value.clone() if isinstance(value, torch.Tensor) else value


def _tensors(result) -> list:
    if isinstance(result, (tuple, list)):
        return [r for r in result if isinstance(r, torch.Tensor)]
    return [result]


def _compare(name, got, expected, rtol, atol, max_mismatch_pct, max_abs_diff) -> None:
    got, expected = _tensors(got), _tensors(expected)
    if len(got) != len(expected):
        raise WrongResult(f"{name}: {len(got)} outputs, the reference has {len(expected)}")
    for i, (g, e) in enumerate(zip(got, expected)):
        g, e = g.detach().to(torch.float32), e.detach().to(torch.float32)
        try:
            torch.testing.assert_close(g, e, rtol=rtol, atol=atol)
        except AssertionError as exc:
            if max_mismatch_pct is not None and g.shape == e.shape:
                bad = ~torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
                worst = (g - e).abs()[bad].max().item() if bad.any() else 0.0
                if bad.float().mean().item() <= max_mismatch_pct and (
                        max_abs_diff is None or worst <= max_abs_diff):
                    continue
            message = " ".join(str(exc).split())
            raise WrongResult(f"{name} output {i}: {message}") from None


class CosSimilarity(NamedTuple):
    """`check_example(cos_sim=...)`: the outputs' mean cosine similarity along `dim` is at least `min_similarity`."""

    dim: int
    min_similarity: float


def check_example(name, args, expected, fn_name=None, skip_accuracy=False, static_shapes=None, atol=1e-1,
                  rtol=1e-2, max_mismatch_pct=None, max_mismatched_abs_diff=None, emit_code=True, cos_sim=None,
                  **config):
    """Runs kernel `fn_name` (default `name`) of EXAMPLES_DIR/`name`.py on `args` under the config the
    kwargs give, compares the result with `expected` (None entries: not compared) unless `skip_accuracy`,
    and returns its generated code."""
    fn = getattr(import_path(EXAMPLES_DIR / f"{name}.py"), fn_name or name)
    if static_shapes is not None:
        fn.settings.static_shapes = static_shapes
    code, result = code_and_output(fn, args, **config)
    if not skip_accuracy:
        _compare_expected(name, result, expected, rtol, atol, max_mismatch_pct, max_mismatched_abs_diff, cos_sim)
    return code if emit_code else ""


def _compare_expected(name, got, expected, rtol, atol, max_mismatch_pct, max_abs_diff, cos_sim) -> None:
    """`_compare` over matching structures, skipping what `expected` leaves None; `cos_sim` checked first."""
    if expected is None:
        return
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            raise WrongResult(f"{name}: the result's structure differs from the reference's")
        for g, e in zip(got, expected):
            _compare_expected(name, g, e, rtol, atol, max_mismatch_pct, max_abs_diff, cos_sim)
        return
    if cos_sim is not None:
        dim, least = cos_sim
        similarity = torch.nn.functional.cosine_similarity(got.float(), expected.float(), dim=dim).mean().item()
        if not similarity >= least:
            raise WrongResult(f"{name}: mean cosine similarity {similarity:.6f} is below {least}")
    _compare(name, got, expected, rtol, atol, max_mismatch_pct, max_abs_diff)


def run_example(kernel_fn, baseline_fn, args, kernel_name="helion", baseline_name="torch", rtol=1e-2,
                atol=1e-1, max_mismatch_pct=None, max_mismatched_abs_diff=None, **_ignored):
    """Runs each kernel on copies of `args` and compares it with the first baseline (forward only;
    `bwd`, benchmarks and traces are ignored). Returns {} where Helion returns timings."""
    kernels = kernel_fn if isinstance(kernel_fn, dict) else {kernel_name: kernel_fn}
    baselines = baseline_fn if isinstance(baseline_fn, dict) else {baseline_name: baseline_fn}
    expected = next(iter(baselines.values()))(*[_clone(a) for a in args])
    for name, fn in kernels.items():
        got = fn(*[_clone(a) for a in args])
        _compare(name, got, expected, rtol, atol, max_mismatch_pct, max_mismatched_abs_diff)
    return {}


def do_bench(fn, *args, **kwargs) -> float:
    """Milliseconds of one call (no warmup or repetition: timings mean nothing on the interpreter)."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def import_path(filename: Path):
    """Imports a Python file by path once (as Helion's helper does)."""
    filename = Path(filename)
    name = f"helion._testing.{filename.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, filename)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --- skip decorators ----------------------------------------------------------------------------
def skipIfFn(cond_fn, reason: str):
    """Skips a test (or every test of a class) when `cond_fn()` is true when it runs."""

    def decorator(item):
        if isinstance(item, type):
            setup = item.setUp

            def setUp(self, *args, **kwargs):
                if cond_fn():
                    self.skipTest(reason)
                return setup(self, *args, **kwargs)

            item.setUp = setUp
            return item

        @functools.wraps(item)
        def wrapper(*args, **kwargs):
            if cond_fn():
                raise unittest.SkipTest(reason)
            return item(*args, **kwargs)

        return wrapper

    return decorator


def _skip(prefix: str):
    def mark(*args, reason: str = "", **kwargs):
        reason = reason or next((a for a in args if isinstance(a, str)), "")
        return unittest.skip(f"{prefix}: {reason}" if reason else prefix)

    return mark


def _no_op(*args, **kwargs):
    return lambda item: item


# not ref-eager mode, not TileIR/ROCm/XPU/MTIA/Pallas/CuTe: their marks change nothing here
skipIfRefEager = skipIfTileIR = skipIfRocm = skipIfXPU = skipIfMTIA = skipIfPallas = skipIfCute = _no_op
skipIfNotTriton = skipIfMetal = skipIfA10G = skipIfPallasInterpret = _no_op
xfailIfPallas = xfailIfPallasTpu = xfailIfPallasInterpret = xfailIfCute = _no_op
skipIfSharedMemoryLessThan = _no_op
skipIfNormalMode = _skip("ref-eager-only test")
skipIfCpu = _skip("skipped on CPU")
skipUnlessTensorDescriptor = _skip("needs tensor descriptors (TMA, CUDA)")
skipIfLowVRAM = _skip("needs a GPU with high VRAM")
skipUnlessAMDCDNA = skipUnlessMultiXCD = skipUnlessMTIA = skipUnlessTileIR = _skip("other hardware")
skipUnlessCuteAvailable = skipUnlessPallas = _skip("other backend")


def skipIfNotCUDA():
    return unittest.skip("CUDA-only test")


def skipIfCudaCapabilityLessThan(min_capability, *, reason=None):
    return unittest.skip(reason or f"needs CUDA capability >= {min_capability}")


def skipIfPyTorchBaseVerLessThan(min_version: str):
    base = tuple(int(p) for p in re.match(r"(\d+)\.(\d+)", torch.__version__).groups())
    wanted = tuple(int(p) for p in min_version.split(".")[:2])
    return unittest.skipIf(base < wanted, f"PyTorch {min_version} or higher required")


def onlyBackends(backends):
    """Skips a test class unless the Triton backend is listed."""
    if _get_backend() in backends:
        return lambda cls: cls
    return unittest.skip(f"only for backends {list(backends)}")


# --- test base classes --------------------------------------------------------------------------
class TestCase(unittest.TestCase):
    """Helion's TestCase on unittest's: asserts on generated code (`GeneratedCode`) are no-ops."""

    maxDiff = 16384
    _in_ref_eager_mode = False

    def assertExpectedJournal(self, value, *args, **kwargs) -> None:
        pass

    assertExpectedInline = assertEqualCode = assertNotEqualCode = assertExpectedJournal

    def assertIn(self, member, container, msg=None):
        if not isinstance(container, GeneratedCode):
            super().assertIn(member, container, msg)

    def assertNotIn(self, member, container, msg=None):
        if not isinstance(container, GeneratedCode):
            super().assertNotIn(member, container, msg)

    def assertRegex(self, text, regex, msg=None):
        if not isinstance(text, GeneratedCode):
            super().assertRegex(text, regex, msg)

    def assertNotRegex(self, text, regex, msg=None):
        if not isinstance(text, GeneratedCode):
            super().assertNotRegex(text, regex, msg)

    def assertEqual(self, first, second, msg=None):
        if not isinstance(first, (GeneratedCode, CodeCount)):
            super().assertEqual(first, second, msg)

    def assertTrueIfInNormalMode(self, condition, msg=None):
        self.assertTrue(condition, msg)

    def getUserDefinedTunable(self, tunables, key):
        return tunables.get(key)


class RefEagerTestBase:
    """Mixin Helion uses to also run a file in ref-eager mode; normal mode here, so no change."""


class RefEagerTestDisabled:
    """Mixin of classes Helion skips in ref-eager mode; normal mode here, so no change."""
