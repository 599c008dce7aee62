"""The jit's call path: per-signature compilation and the fast guard for repeated signatures."""
import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl


@tfn.jit
def scale(x, factor: float):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * factor
    return out


@pytest.mark.parametrize("n", [7, 32])
def test_alternating_signatures_give_the_right_answers(n):
    kernel = tfn.jit(scale.fn)
    x = torch.randn(n)
    for factor, tensor in [(2.0, x), (3.0, x), (2.0, x.double()), (2.0, torch.randn(n + 1)[1:]), (2.0, x), (2, x)]:
        torch.testing.assert_close(kernel(tensor, factor), tensor * factor)
    assert len(kernel._executables) == 4  # (a new float value is none: a runtime value; an int is)


# --- register_tunable: one trace per (signature, tunable values) ------------------------------
class TraceCounter:
    """Counts traces; an object (compared by identity), not a list: a mutated captured list is a new
    value, which would retrace (tilefn.trace.captures)."""

    count = 0


TRACES = TraceCounter()


def chunked_sum(x):
    """Row sums; a tunable picks the column block and whether columns are summed in a loop."""
    TRACES.count += 1
    m, n = x.shape
    block = tl.register_tunable("block_n", (4, 8, 16))
    looped = tl.register_tunable("looped", (False, True))
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        if looped:
            acc = tl.zeros([tm], dtype=torch.float32)
            for tn in tl.tile(n, block_size=block):
                acc = acc + x[tm, tn].sum(1)
            out[tm] = acc
        else:
            out[tm] = x[tm, :].sum(1)
    return out


def test_each_tunable_assignment_is_its_own_program_and_all_match_torch():
    kernel = tfn.jit(chunked_sum)
    x = torch.randn(6, 37)
    whole = tfn.Config(block_sizes=[2], tunables={"looped": False})
    chunked = tfn.Config(block_sizes=[2], tunables={"looped": True, "block_n": 8})
    whole_source, chunked_source = kernel.lower(x, config=whole).source, kernel.lower(x, config=chunked).source
    assert whole_source != chunked_source
    assert "BLOCK_TN=8" in chunked_source and "BLOCK_TN" not in whole_source
    for config in (whole, chunked, tfn.Config(tunables={"looped": True, "block_n": 4})):
        torch.testing.assert_close(kernel.lower(x, config=config).compile()(x), x.sum(1))
        torch.testing.assert_close(tfn.interpret(kernel, config=config)(x), x.sum(1))


def test_tracing_happens_once_per_signature_and_tunables():
    kernel = tfn.jit(chunked_sum)
    x = torch.randn(4, 16)
    configs = [tfn.Config(tunables={"looped": True}), tfn.Config(tunables={"looped": True, "block_n": 16}), None]
    TRACES.count = 0
    for _ in range(2):
        programs = [kernel.lower(x, config=c).source for c in configs]
    assert TRACES.count == 3 and len(set(programs)) == 3
    kernel.lower(torch.randn(5, 16), config=configs[0])
    assert TRACES.count == 4


def test_a_jit_config_with_tunables_is_traced_with_them():
    x = torch.randn(5, 19)
    kernel = tfn.jit(chunked_sum, config=tfn.Config(tunables={"looped": True, "block_n": 16}))
    torch.testing.assert_close(kernel(x), x.sum(1))
    program, _ = kernel.trace_and_bind((x,), {})
    assert {t.name: t.value for t in program.tunables} == {"block_n": 16, "looped": True}
    assert "BLOCK_TN=16" in kernel.lower(x).source
    torch.testing.assert_close(tfn.interpret(kernel)(x), x.sum(1))


def test_a_bad_config_value_fails_the_call_clearly():
    kernel = tfn.jit(chunked_sum, config=tfn.Config(tunables={"block_n": 5}))
    with pytest.raises(tfn.TilefnError, match="block_n=5 is not one of"):
        kernel(torch.randn(4, 8))
