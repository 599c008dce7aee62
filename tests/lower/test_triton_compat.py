"""tilefn.lower.triton_compat: version checks, the untested-Triton warning, the block-pointer fallback,
and the C launcher's argument layout checked against Triton's own CudaLauncher (no GPU needed)."""
from __future__ import annotations

import contextvars
import logging
import os
import subprocess
import sys
import types
import warnings

import pytest
import torch
import triton
import triton.language as triton_lang
from triton.backends.nvidia.driver import CudaLauncher
from triton.runtime import _allocation

import tilefn as tfn
from tilefn import lang as tl
from tilefn.lower import triton_compat as compat
from kernels import matmul

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


# --- versions --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [("3.6.0", (3, 6)), ("3.7.1", (3, 7)), ("3.7.0+git1a2b3c", (3, 7)),
                                        ("3.8.0rc1", (3, 8)), ("3.10.2", (3, 10)), ("4", (4, 0)),
                                        ("not a version", None), ("", None)])
def test_minor_version(text, want):
    assert compat.minor_version(text) == want


@pytest.mark.parametrize("text", ["3.5.0", "3.6.0", "3.7.0", "3.7.1", "3.7.0+gitabc", "3.5.1.post1"])
def test_tested_versions_get_no_message(text):
    assert compat.untested_message(text) is None


@pytest.mark.parametrize("text", ["3.4.0", "3.8.0", "3.9.0", "4.0.0", "3.8.0rc1", "nonsense"])
def test_untested_versions_get_a_message_naming_them_and_the_range(text):
    message = compat.untested_message(text)
    assert repr(text) in message and "Triton 3.5 to 3.7" in message and "triton>=3.5,<3.8" in message


def test_the_installed_triton_is_tested():
    assert compat.untested_message(triton.__version__) is None


def test_an_untested_version_warns_once():
    compat.warn_if_untested.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                compat.warn_if_untested("3.9.0")
            compat.warn_if_untested("3.6.0")
    finally:
        compat.warn_if_untested.cache_clear()
    assert [(w.category, str(w.message)) for w in caught] == [(RuntimeWarning, compat.untested_message("3.9.0"))]


FIRST_USE = """
import warnings, torch, triton
triton.__version__ = "3.9.0"
warnings.simplefilter("always")
import tilefn as tfn
from tilefn import lang as tl
print("imported", flush=True)

def double(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * 2
    return out

x = torch.arange(8.0)
assert torch.equal(tfn.jit(double)(x), x * 2)
assert torch.equal(tfn.jit(double)(x + 1), (x + 1) * 2)
print("ran", flush=True)
"""


def test_an_untested_triton_is_told_once_at_the_first_lowering(tmp_path):
    env = dict(os.environ, TILEFN_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", FIRST_USE], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["imported", "ran"]
    lines = [line for line in done.stderr.splitlines() if "tilefn is tested with Triton" in line]
    assert len(lines) == 1 and "'3.9.0'" in lines[0], done.stderr


# --- block pointers --------------------------------------------------------------------------
def row_double(x):
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = x[tm, :] * 2.0
    return out


BLOCK_PTR = tfn.Config(block_sizes=[32, 32, 16], indexing="block_ptr")


def _kernel_source(fn, *args, config):
    return tfn.jit(fn).lower(*args, config=config).kernel.kernel


def test_block_pointers_are_used_where_triton_has_them():
    assert compat.has_block_ptr()
    assert "tl.make_block_ptr(" in _kernel_source(matmul, torch.randn(64, 64), torch.randn(64, 64), config=BLOCK_PTR)


@pytest.fixture
def no_block_ptr(monkeypatch):
    """A Triton without tl.make_block_ptr (as 3.9 is); the fallback notice not yet given."""
    monkeypatch.delattr(triton_lang, "make_block_ptr")
    compat.block_ptr_fallback_notice.cache_clear()
    yield
    compat.block_ptr_fallback_notice.cache_clear()


def _notices(caplog):
    return [r.getMessage() for r in caplog.records if "has no block pointers" in r.getMessage()]


def test_without_block_pointers_a_dense_box_takes_a_tensor_descriptor(no_block_ptr, caplog):
    x, y = torch.randn(64, 48), torch.randn(48, 64)
    with caplog.at_level(logging.WARNING, logger="tilefn"):
        text = _kernel_source(matmul, x, y, config=BLOCK_PTR)
        got = tfn.jit(matmul, config=BLOCK_PTR)(x, y)
    assert "make_block_ptr" not in text and "tl.make_tensor_descriptor(" in text, text
    torch.testing.assert_close(got, x @ y, atol=1e-4, rtol=1e-4)
    assert len(_notices(caplog)) == 1  # one line for the process, however many accesses and lowerings


def test_without_block_pointers_a_box_tma_cannot_serve_takes_pointers(no_block_ptr, caplog):
    x = torch.randn(5, 3)  # rows of 12 bytes: too short for a descriptor
    config = tfn.Config(block_sizes=[4], indexing="block_ptr")
    with caplog.at_level(logging.WARNING, logger="tilefn"):
        text = _kernel_source(row_double, x, config=config)
        got = tfn.jit(row_double, config=config)(x)
    assert "make_block_ptr" not in text and "make_tensor_descriptor" not in text and "tl.load(x + " in text, text
    torch.testing.assert_close(got, x * 2)
    assert len(_notices(caplog)) == 1


# --- the C launcher's arguments --------------------------------------------------------------
class _Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, *args):
        self.calls.append(args)


def _fake_kernel(global_scratch: int = 0, profile_scratch: int = 0, num_ctas: int = 1):
    """A CompiledKernel whose `run` is a CudaLauncher (its __init__ skipped: it builds C code) with a recording launch."""
    run = CudaLauncher.__new__(CudaLauncher)
    run.launch, run.num_ctas = _Recorder(), num_ctas
    run.global_scratch_size, run.global_scratch_align = global_scratch, 128
    run.profile_scratch_size, run.profile_scratch_align = profile_scratch, 128
    run.launch_cooperative_grid, run.launch_pdl = False, True
    run.arg_annotations, run.kernel_signature = ("annotations",), "signature"  # read by Triton >= 3.7 only
    return types.SimpleNamespace(run=run, packed_metadata=(4, 1, 0), function=0xF00)


def _scratch(size):
    return f"scratch of {size} bytes"


def _triton_launch(kernel, grid, stream, args, n_constexprs):
    """What JITFunction.run makes CudaLauncher pass to the C launch (the oracle), global scratch from `_scratch`."""
    def run():
        _allocation.set_allocator(lambda size, align, stream: _scratch(size))
        kernel.run(*grid, stream, kernel.function, kernel.packed_metadata, None, None, None, *args,
                   *(None,) * n_constexprs)

    contextvars.copy_context().run(run)  # (set_allocator sets a context variable: undone on return)
    return kernel.run.launch.calls.pop()


@pytest.fixture
def fake_stream(monkeypatch):
    """torch's current stream as Triton's driver reports it: 77 + the device index."""
    active = types.SimpleNamespace(get_current_stream=lambda index: 77 + index)
    monkeypatch.setattr(compat, "driver", types.SimpleNamespace(active=active))


@pytest.mark.parametrize("global_scratch, num_ctas", [(0, 1), (256, 1), (256, 2)])
def test_the_direct_launch_passes_what_triton_passes(fake_stream, global_scratch, num_ctas):
    kernel = _fake_kernel(global_scratch, num_ctas=num_ctas)
    launcher = compat.cuda_launcher(kernel, device_index=1, n_constexprs=2, scratch=_scratch)
    args = (0x1000, 0x2000, 7, 2.5)
    launcher((3, 2, 1), *args)
    ours = kernel.run.launch.calls.pop()
    assert ours == _triton_launch(kernel, (3, 2, 1), 78, args, 2)
    assert (f"scratch of {3 * 2 * global_scratch * num_ctas} bytes" in ours) == bool(global_scratch)
    assert launcher.kernel is kernel  # keeps the loaded module alive


def test_profiling_kernels_go_through_triton_s_own_call(fake_stream):
    """With profile scratch the launch goes through CudaLauncher.__call__, as JITFunction.run calls it."""
    kernel = _fake_kernel()
    kernel.run = _Recorder()
    kernel.run.launch, kernel.run.profile_scratch_size = _Recorder(), 64
    compat.cuda_launcher(kernel, device_index=0, n_constexprs=1, scratch=_scratch)((4, 1, 1), 0x1000, 5)
    assert kernel.run.calls == [(4, 1, 1, 77, 0xF00, (4, 1, 0), None, None, None, 0x1000, 5, None)]
    assert kernel.run.launch.calls == []


def test_a_spelled_launch_passes_what_triton_passes(fake_stream):
    """Host code calling the C launch itself (`launcher.spell`) passes what Triton's own launch would."""
    kernel = _fake_kernel()
    launcher = compat.cuda_launcher(kernel, device_index=1, n_constexprs=2, scratch=_scratch)
    call, names = launcher.spell("_launch", ["3", "n // 2", "1"], ["x_ptr", "y_ptr", "n", "2.5"])
    exec(f"def host(x_ptr, y_ptr, n):\n    {call}\n", names)
    names["host"](0x1000, 0x2000, 4)
    assert kernel.run.launch.calls.pop() == _triton_launch(kernel, (3, 2, 1), 78, (0x1000, 0x2000, 4, 2.5), 2)


def test_a_kernel_needing_scratch_memory_is_not_spelled(fake_stream):
    assert not hasattr(compat.cuda_launcher(_fake_kernel(256), device_index=0, n_constexprs=1, scratch=_scratch),
                       "spell")
