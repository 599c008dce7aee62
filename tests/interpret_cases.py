"""Shared by the tfn.interpret tests: dtypes, hypothesis strategies, tolerances, inputs."""
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import tilefn as tfn

F32, F16, BF16, I32, I64 = torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64
FLOATS = [F32, F16, BF16]
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.integers(1, 24)  # rarely a multiple of the block size: edge tiles are ragged
blocks = st.sampled_from([1, 2, 4, 8, 16, 32])
wide_blocks = st.sampled_from([2, 4, 8, 16, 32])  # for 2-d grids: no 1x1 tiles, to stay fast
seeds = st.integers(0, 2**31 - 1)
float_dtypes = st.sampled_from(FLOATS)
dtypes = st.sampled_from(FLOATS + [I32])


def tolerance(dtype, scale=1.0):
    """rtol/atol for comparing a result of `dtype`; `scale` widens atol for long sums."""
    rtol, atol = {F32: (1e-5, 1e-5), F16: (2e-3, 2e-3), BF16: (2e-2, 2e-2)}.get(dtype, (0, 0))
    return dict(rtol=rtol, atol=atol * scale)


def check(actual, expected, scale=1.0, dtype=None):
    """Compare with tolerances for `dtype` (the computation's precision; default: the result's)."""
    tol = tolerance(dtype or expected.dtype, scale)
    torch.testing.assert_close(actual, expected, equal_nan=True, **tol)


def data(shape, dtype, seed, low=-3.0, high=3.0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    if dtype.is_floating_point:
        return (torch.rand(shape, generator=g) * (high - low) + low).to(dtype)
    return torch.randint(int(low), int(high) + 1, shape, generator=g).to(dtype)


def interpret(kernel, *args, block_sizes=()):
    return tfn.interpret(kernel, config=tfn.Config(block_sizes=list(block_sizes)))(*args)
