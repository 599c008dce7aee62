"""Every example kernel, compiled (Triton's CPU interpreter) and run by the reference interpreter,
agrees with its eager PyTorch reference (`tilefn.testing.assert_matches`).

Each example file defines KERNELS, reference(...) and make_inputs(device, dtype, size). The small
inputs have sizes that block sizes don't divide (37 x 50 ...), and each kernel also runs with
block size 16 everywhere, so ragged edge tiles and several iterations of every loop are exercised.
"""
from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tilefn as tfn
from tilefn.testing import assert_matches

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ["add", "exp", "sum", "long_sum", "softmax", "softmax_backward", "layer_norm", "rms_norm",
         "welford", "matmul", "linear", "attention", "bmm", "matmul_epilogue", "cross_entropy", "embedding", "geglu",
         "swiglu", "jagged_sum"]
NOT_KERNELS = {"demo", "_util"}
# (atol, rtol) per output dtype; bfloat16 outputs are rounded once at the end of the kernel.
TOLERANCES = {torch.float32: (1e-4, 1e-4), torch.bfloat16: (2e-2, 2e-2)}


def load(name):
    spec = importlib.util.spec_from_file_location(f"tilefn_examples.{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
MODULES = {name: load(name) for name in NAMES}
CASES = [pytest.param(name, i, id=f"{name}.{kernel.__name__}")
         for name, module in MODULES.items() for i, kernel in enumerate(module.KERNELS)]


def test_every_example_is_tested():
    found = {p.stem for p in EXAMPLES.glob("*.py")} - NOT_KERNELS
    assert found == set(NAMES)


def small_blocks(kernel, args) -> tfn.Config:
    program = tfn.make_ir(kernel)(*args)
    return tfn.Config(block_sizes=[16] * len(program.blocks))


@pytest.mark.parametrize("blocks", ["default", "16"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("name, index", CASES)
def test_example(name, index, dtype, blocks):
    """The interpreter and the compiled kernel (Triton's CPU interpreter) agree with the reference."""
    module = MODULES[name]
    kernel = module.KERNELS[index]
    torch.manual_seed(0)
    args = module.make_inputs("cpu", dtype)
    config = small_blocks(kernel, args) if blocks == "16" else None
    atol, rtol = TOLERANCES[dtype]
    assert_matches(kernel, module.reference, *args, configs=[config] if config else None, atol=atol, rtol=rtol)


@pytest.mark.parametrize("name", ["causal_attention", "causal_attention_split"])
@pytest.mark.parametrize("seq", [1, 2, 17, 50])
def test_causal_attention_matches_causal_sdpa(seq, name):
    """examples/attention.py's causal kernels (one masked loop; unmasked keys then the masked diagonal
    band), compiled and interpreted under a few drawn Configs, against SDPA with is_causal=True."""
    module = MODULES["attention"]
    torch.manual_seed(0)
    args = module.make_inputs("cpu", torch.float32, (2, 2, seq, 16))
    assert_matches(getattr(module, name), functools.partial(module.reference, causal=True), *args, configs=2)


def test_demo_runs():
    result = subprocess.run([sys.executable, str(EXAMPLES / "demo.py")], capture_output=True,
                            text=True, timeout=120, cwd=EXAMPLES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("OK") == 2
    assert "def matmul(" in result.stdout and "def softmax(" in result.stdout
