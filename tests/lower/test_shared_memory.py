"""The shared-memory estimate of matrix-product operands against what Triton allocates when it compiles for
sm_90 (ptxas, no GPU), and default Configs that fit an H200 block's 232448 bytes: the attention forward and
matmul keep their tiles, the derived attention backward (five products per key tile) takes smaller key tiles."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import tilefn as tfn
import tilefn.testing as tt
from kernels import matmul
from tilefn.lower.defaults import complete_config
from tilefn.lower.shared_memory import MAX_SHARED_BYTES, dot_operands, shared_bytes

sys.path[:0] = [str(Path(__file__).parents[2] / "examples"), str(Path(__file__).parents[2] / "benchmarks")]
from attention import attention  # noqa: E402
from attention_backward import causal_attention  # noqa: E402

BARRIERS = 128  # bytes Triton adds for the pipeline's mbarriers (8 per stage and operand), not a dot operand


def _qkv(dtype=torch.bfloat16):
    return tuple(torch.randn(1, 2, 256, 128, dtype=dtype) for _ in range(4))


def _estimate(kernel, args, config=None):
    program = tfn.make_ir(kernel)(*args)
    config = complete_config(program, config)
    return config, shared_bytes(program, dot_operands(program), config)


# (name, kernel, args, the default's block sizes and stages, or None where only its fit is checked)
DEFAULTS = [
    ("attention", attention, _qkv()[:3], ((1, 128, 64), 2)),  # (`defaults._chained_products`)
    ("attention_vjp", tfn.vjp(attention), _qkv(), ((1, 128, 64), 3)),  # (327680 with key tiles of 128)
    ("causal_attention_vjp", tfn.vjp(causal_attention), _qkv(), ((1, 128, 64), 3)),
    ("matmul", matmul, (torch.randn(4096, 4096, dtype=torch.bfloat16),) * 2, ((128, 256, 64), 3)),
    ("matmul_float64", matmul, (torch.randn(256, 256, dtype=torch.float64),) * 2, ((64, 64, 64), 3)),
]


@pytest.mark.parametrize("name, kernel, args, tiles", DEFAULTS, ids=[d[0] for d in DEFAULTS])
def test_default_configs_fit_an_h200_block(name, kernel, args, tiles):
    config, estimate = _estimate(kernel, args)
    assert (tuple(config.block_sizes), config.num_stages) == tiles
    shared = tt.compile_for_gpu(kernel, *args).metadata.shared
    assert shared <= MAX_SHARED_BYTES
    if name != "matmul_float64":  # (float64 products run on FMA units: Triton stages less than the model says)
        assert estimate <= shared <= estimate + BARRIERS


@pytest.mark.parametrize("config, want", [
    (tfn.Config(block_sizes=[1, 128, 128], num_stages=3), 327680),  # the old default: the H200 refused it
    (tfn.Config(block_sizes=[1, 128, 128], num_stages=1), 196608),
    (tfn.Config(block_sizes=[1, 128, 64], num_stages=2), 163840),
], ids=["old-default", "one-stage", "two-stages"])
def test_the_backward_estimate_is_what_triton_allocates(config, want):
    """q, dO, dS and the transposed P once, the key and value tiles once per stage (128x128 bf16: 32 KB)."""
    bwd, args = tfn.vjp(attention), _qkv()
    assert _estimate(bwd, args, config)[1] == want
    shared = tt.compile_for_gpu(bwd, *args, config=config).metadata.shared
    assert shared <= want + BARRIERS  # (the estimate bounds it: what `fits` needs)
    if config.num_stages > 1:  # (one stage: Triton's allocator may reuse a buffer whose last read has passed)
        assert want <= shared


def test_an_inner_loop_s_own_stages_count():
    """range_num_stages=[4] pipelines matmul's k loop 4 deep under a kernel-wide num_stages of 2."""
    args = (torch.randn(512, 512, dtype=torch.bfloat16),) * 2
    config = tfn.Config(block_sizes=[128, 128, 64], num_stages=2, range_num_stages=[4])
    want = 4 * (128 * 64 + 64 * 128) * 2
    assert _estimate(matmul, args, config)[1] == want
    assert want <= tt.compile_for_gpu(matmul, *args, config=config).metadata.shared <= want + BARRIERS
