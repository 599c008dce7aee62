"""tl.barrier(): loops after it read what loops before it wrote, each phase its own launch of one
kernel (PHASE constexpr), under every pid_type that takes several loops; vs eager torch and interpret."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import TracingError


def split_k(a, b, parts: int):
    m, k = a.shape
    _, n = b.shape
    partial = torch.zeros(parts, m, n, device=a.device)
    out = torch.empty(m, n, device=a.device)
    chunk = k // parts
    for p, tm, tn in tl.tile([parts, m, n], block_size=[1, None, None]):
        acc = tl.zeros([tm, tn])
        for tk in tl.tile(p.begin * chunk, p.begin * chunk + chunk):
            acc = tl.dot(a[tm, tk], b[tk, tn], acc=acc)
        partial[p, tm, tn] = acc[None, :, :]
    tl.barrier()
    for tm, tn in tl.tile([m, n]):
        out[tm, tn] = partial[:, tm, tn].sum(0)
    return out


def three_phases(x):
    a, b, c = torch.empty_like(x), torch.empty_like(x), torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        a[t] = x[t] + 1
    tl.barrier()
    for t in tl.tile(x.shape[0]):
        b[t] = a[t] * 2
    for t in tl.tile(x.shape[0]):
        c[t] = x[t] - 1  # a second loop in phase 1: reads nothing phase 1 writes
    tl.barrier()
    tl.barrier()  # (a barrier with no loop before it in its phase orders nothing)
    for t in tl.tile(x.shape[0]):
        c[t] = c[t] + b[t]
    return a, b, c


def reversed_copy(x):
    """Phase 1 reads elements other programs of phase 0 wrote: wrong without the barrier."""
    tmp, out = torch.empty_like(x), torch.empty_like(x)
    n = x.shape[0]
    for t in tl.tile(n):
        tmp[t] = x[t] * 3
    tl.barrier()
    for t in tl.tile(n):
        out[t] = tmp[n - 1 - t.index]
    return out


SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(data=st.data())
def test_split_k_through_a_barrier_matches_eager(data):
    a, b = torch.randn(24, 64), torch.randn(64, 20)
    kernel = tfn.jit(split_k)
    config = data.draw(tt.configs(kernel, a, b, 4))
    tt.assert_matches(kernel, lambda a, b, parts: a @ b, a, b, 4, configs=config, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("pid_type", ["flat", "persistent_blocked", "persistent_interleaved"])
def test_three_phases_and_a_reversal_under_each_pid_type(pid_type):
    x = torch.randn(300)
    config = tfn.Config(block_sizes=[32, 64, 16, 128], pid_type=pid_type)
    a, b, c = tfn.jit(three_phases, config=config)(x)
    torch.testing.assert_close(a, x + 1)
    torch.testing.assert_close(b, (x + 1) * 2)
    torch.testing.assert_close(c, x - 1 + (x + 1) * 2)
    for got, want in zip(tfn.interpret(three_phases)(x), (a, b, c)):
        torch.testing.assert_close(got, want)
    config = tfn.Config(block_sizes=[16, 32], pid_type=pid_type)
    torch.testing.assert_close(tfn.jit(reversed_copy, config=config)(x), (x * 3).flip(0))


def test_each_phase_is_a_launch_of_one_kernel_specialised_on_phase():
    x = torch.randn(100)
    text = tfn.jit(reversed_copy).lower(x).source
    assert text.count("@triton.jit") == 1 and "PHASE: tl.constexpr" in text
    assert "if PHASE == 0:" in text and "if PHASE == 1:" in text
    assert "_launch0((" in text and "_launch1((" in text


def test_without_a_barrier_reading_an_earlier_loops_writes_is_refused():
    def unordered(x):
        tmp, out = torch.empty_like(x), torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            tmp[t] = x[t] * 3
        for t in tl.tile(x.shape[0]):
            out[t] = tmp[t]
        return out

    with pytest.raises(TracingError, match=r"Put tl.barrier\(\) between"):
        tfn.jit(unordered)(torch.randn(8))


def test_a_barrier_inside_a_tile_loop_is_a_clear_error():
    def inside(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            tl.barrier()
            out[t] = x[t]
        return out

    with pytest.raises(TracingError, match=r"tl.barrier\(\) orders top-level tile loops") as info:
        tfn.jit(inside)(torch.randn(8))
    assert "tl.barrier()" in str(info.value) and "test_barrier.py" in str(info.value)


def test_every_phase_compiles_for_sm90():
    a, b = torch.randn(128, 256), torch.randn(256, 64)
    compiled = tt.compile_for_gpu(split_k, a, b, 4)
    assert "ptx" in compiled.asm


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("pid_type", ["flat", "persistent_blocked", "persistent_interleaved"])
def test_on_the_gpu_the_phase_after_a_barrier_sees_every_write_of_the_one_before(pid_type):
    x = torch.randn(1 << 24, device="cuda")  # thousands of programs: no ordering by luck
    config = tfn.Config(block_sizes=[1024, 1024], pid_type=pid_type)
    torch.testing.assert_close(tfn.jit(reversed_copy, config=config)(x), (x * 3).flip(0))
    a, b = torch.randn(512, 4096, device="cuda"), torch.randn(4096, 256, device="cuda")
    torch.testing.assert_close(tfn.jit(split_k, dot_precision="ieee")(a, b, 8), a @ b, atol=1e-2, rtol=1e-3)
