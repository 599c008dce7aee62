"""Fuzzing with whole drawn tile programs (tilefn.fuzz): compiled == tfn.interpret == eager PyTorch.

CI runs a fixed, derandomized set of EXAMPLES programs (each with the default or a drawn Config).
`pytest tests/test_fuzz.py --fuzz-long=2000` also runs 2000 random ones, keeps going past
failures and prints how many programs it tried, the op kinds they covered and what failed
(`--hypothesis-seed=S` repeats a run).
"""
from __future__ import annotations

import collections

import attrs

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import tilefn as tfn
import tilefn.fuzz as fz
import tilefn.testing as tt
from tilefn import lang as tl

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")

EXAMPLES = 80
QUIET = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck))


def draw_config(data, program):
    """None (the default Config) or one drawn from the program's ConfigSpec."""
    kernel, _ = fz.build(program)
    return data.draw(st.none() | tt.configs(kernel, *fz.inputs(program)), label="config")


@settings(max_examples=EXAMPLES, derandomize=True, **QUIET)
@given(st.data())
def test_drawn_programs_agree(data):
    program = data.draw(fz.programs(), label="program")
    fz.check(program, draw_config(data, program))


def failure(data, program) -> str | None:
    """What went wrong drawing a Config for `program` or checking it under that Config, if anything."""
    try:
        config = draw_config(data, program)
    except Exception as exc:  # tracing for the ConfigSpec failed
        return f"{type(exc).__name__}: {exc}\n--- kernel ---\n{fz.kernel_source(program)}"
    try:
        fz.check(program, config)
    except AssertionError as exc:  # its message quotes the sources
        return str(exc)
    return None


def test_fuzz_long(request, capsys):
    count = request.config.getoption("fuzz_long")
    if not count:
        pytest.skip("runs with --fuzz-long=N")
    tried, covered, failures = collections.Counter(), set(), []

    @settings(max_examples=count, phases=[Phase.generate], **QUIET)
    @given(st.data())
    def run(data):
        program = data.draw(fz.programs(), label="program")
        tried[program.kind] += 1
        covered.update(fz.op_kinds(program))
        problem = failure(data, program)  # recorded; the run goes on
        if problem is not None:
            failures.append(problem)
        if sum(tried.values()) % 100 == 0:
            with capsys.disabled():
                print(f"fuzz-long: {sum(tried.values())} programs, {len(failures)} failed", flush=True)

    run()
    with capsys.disabled():
        print(f"\nfuzz-long: {sum(tried.values())} programs ({dict(tried)}), {len(covered)} op kinds covered: "
              f"{sorted(covered)}; {len(failures)} failed")
        for text in failures:
            print("-" * 80, "\n" + text)
    assert not failures, f"{len(failures)} of {sum(tried.values())} programs failed; the first:\n{failures[0]}"


def where_bf16_or_int(x, idx):
    m, n = x.shape
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        out[tm, tn] = torch.where(x[tm, tn] > 0, x[tm, tn], idx[tm][:, None])
    return out


def test_int_to_bfloat16_cast():
    """Found by the fuzzer: compiled for the CPU, an int -> bfloat16 cast gave the int's bits (Triton
    3.6's interpreter casts so; `Emitter.converted` now goes through float32)."""
    x, idx = -torch.ones(4, 2, dtype=torch.bfloat16), torch.arange(4)
    tt.assert_matches(where_bf16_or_int, lambda x, idx: torch.where(x > 0, x, idx[:, None]), x, idx)


# --- the generator itself ---------------------------------------------------------------------
GATHERED_ROW_MAX = fz.TileProgram(
    "row_reduce", torch.float32, m=5, n=7, gather_rows=3, seed=1, reductions=("amax",),
    body=fz.Unary("exp", fz.Leaf("x_t")), after=fz.Binary("sub", fz.Leaf("row"), fz.Leaf("s_b")))


def test_sources_of_a_known_program():
    assert fz.kernel_source(GATHERED_ROW_MAX) == (
        "def kernel(x, y, r, c, idx):\n"
        "    m, n = y.shape\n"
        "    red = torch.empty([m], dtype=torch.float32, device=y.device)\n"
        "    out = torch.empty([m, n], dtype=torch.float32, device=y.device)\n"
        "    for tm in tl.tile(m):\n"
        "        rows = idx[tm]\n"
        "        x_t = x[rows, :]\n"
        "        row = torch.exp((x_t).clamp(-4.0, 2.0))\n"
        "        s = torch.amax(row, dim=1)\n"
        "        red[tm] = s\n"
        "        out[tm, :] = (row - s[:, None])\n"
        "    return red, out\n")
    x, y, r, c, idx = fz.inputs(GATHERED_ROW_MAX)
    assert x.shape == (3, 7) and idx.shape == (5,) and int(idx.max()) < 3
    row = torch.exp(x[idx].clamp(-4, 2))
    red, out = fz.build(GATHERED_ROW_MAX)[1](x, y, r, c, idx)
    torch.testing.assert_close(red, row.amax(1))
    torch.testing.assert_close(out, row - row.amax(1, keepdim=True))


def test_a_wrong_kernel_is_caught():
    """The check can fail: a kernel reducing with amin disagrees with amax's eager reference."""
    wrong_kernel, _ = fz.build(attrs.evolve(GATHERED_ROW_MAX, reductions=("amin",)))
    _, reference = fz.build(GATHERED_ROW_MAX)
    with pytest.raises(AssertionError, match="compiled vs reference"):
        tt.assert_matches(wrong_kernel, reference, *fz.inputs(GATHERED_ROW_MAX))


def test_op_names_shared_by_the_float_and_int_tables_spell_the_same_op():
    for floats, ints in ((fz.FLOAT_UNARY, fz.INT_UNARY), (fz.FLOAT_BINARY, fz.INT_BINARY)):
        assert all(floats[name] == ints[name] for name in floats.keys() & ints.keys())


def test_a_bfloat16_compare_with_a_number_found_by_the_long_run():
    """Found by `--fuzz-long` (seed 2): bf16 y > 0.3 compared in float32 against 0.3, torch against
    bf16's 0.30078125, so a y of 0.30078125 took the other branch."""
    program = fz.TileProgram(
        kind="row_reduce", dtype=torch.bfloat16, m=39, n=28,
        body=fz.Binary("mul", fz.Where("y_t", 0.3, fz.Leaf("y_t"), fz.Leaf("i_t")), fz.Const(2.0)),
        after=fz.Binary("sub", fz.Leaf("row"), fz.Binary("sub", fz.Leaf("i_t"), fz.Const(0.5))),
        reductions=("amin",), seed=1900)
    fz.check(program, tfn.Config(block_sizes=[64], num_warps=2, num_stages=1))
