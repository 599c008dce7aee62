"""Lowered.compile: on CUDA when the device cannot load the compiled kernel, Triton's OutOfResources, raised
where Triton raises it (the CompiledKernel's module load, faked here: no GPU), becomes a KernelResourceError
naming the kernel, its Config, what it needs against the limit, and what to change; a launcher that spells
its launch is called inline by the host function."""
from __future__ import annotations

import contextlib

import attrs
import pytest
import torch

import tilefn as tfn
from kernels import matmul
from tilefn.errors import KernelResourceError
from tilefn.lower import launch
from tilefn.lower import triton_compat as compat


def _unloadable(required, limit, resource):
    """A CompiledKernel whose module load (its `run` and `function`, as Triton's _init_handles) fails."""
    def load(self):
        raise compat.OutOfResources(required, limit, resource)

    return type("Unloadable", (), {"run": property(load), "function": property(load), "packed_metadata": ()})()


@pytest.fixture
def cuda_lowered(monkeypatch):
    """matmul lowered under a Config, its device made CUDA, compiling to a kernel that cannot load."""
    def lowered(required, limit, resource):
        monkeypatch.setattr(launch, "_compile_cuda", lambda *args, **options: _unloadable(required, limit, resource))
        monkeypatch.setattr(compat, "current_target", lambda: compat.gpu_target(90))
        monkeypatch.setattr(torch.cuda, "device", lambda index: contextlib.nullcontext())
        x = torch.randn(256, 256, dtype=torch.bfloat16)
        config = tfn.Config(block_sizes=[256, 256, 128], num_stages=4, num_warps=8)
        return attrs.evolve(tfn.jit(matmul).lower(x, x, config=config), device=torch.device("cuda", 0))

    return lowered


def test_too_much_shared_memory_is_a_kernel_resource_error(cuda_lowered):
    lowered = cuda_lowered(327736, 232448, "shared memory")
    with pytest.raises(KernelResourceError) as info:
        lowered.compile()  # (the line the error names)
    message = str(info.value)
    assert message.startswith(f"{__file__}:")
    assert "kernel matmul needs 327736 bytes of shared memory under tfn.Config(block_sizes=[256, 256, 128]" in message
    assert "num_warps=8, num_stages=4" in message and "but this GPU has 232448" in message
    assert "smaller block_sizes or fewer num_stages" in message and "tfn.tune(kernel)" in message
    assert "lowered.compile()" in message and "Triton" not in message


def test_too_many_threads_names_threads(cuda_lowered):
    with pytest.raises(KernelResourceError, match="needs 2048 threads per block under .* this GPU has 1024"):
        cuda_lowered(2048, 1024, "threads").compile()


class _SpellingLauncher:
    """A CPU launcher that also says how to call it inline (as `triton_compat.cuda_launcher`'s `spell`)."""

    def __init__(self, real, calls):
        self.real, self.calls = real, calls

    def __call__(self, grid, *args):
        self.calls.append(("called", tuple(grid)))
        self.real(grid, *args)

    def inline(self, g0, g1, g2, *args):
        self.calls.append(("inline", (g0, g1, g2)))
        self.real((g0, g1, g2), *args)

    def spell(self, name, grid, arguments):
        return f"{name}_c({', '.join(grid)}, {', '.join(arguments)})", {f"{name}_c": self.inline}


def test_a_launcher_that_spells_its_launch_is_called_inline(monkeypatch):
    calls, make = [], launch.make_launcher
    monkeypatch.setattr(launch, "make_launcher", lambda *a, **k: _SpellingLauncher(make(*a, **k), calls))

    @tfn.jit
    def scaled(x):
        out = torch.empty_like(x)
        for t in tfn.lang.tile(x.shape[0]):
            out[t] = x[t] * 3
        return out

    x = torch.randn(40)
    lowered = scaled.lower(x)
    host = lowered.compile()
    torch.testing.assert_close(host(x), x * 3)
    assert calls == [("inline", (1, 1, 1))]
    assert "_launch_c(1, 1, 1, x, out)" in host.host_source and "_launch((1, 1, 1), x, out)" in lowered.host_source
