"""scaled_max: amax/amin of a tile times a positive literal is taken before the scaling, bit for bit."""
import sys
from pathlib import Path

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.interpret import run_program
from tilefn.lower.rewrites.scaled_max import scaled_max
from tilefn.trace.ir import walk_eqns

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
import attention  # noqa: E402


def reduced_inputs(program):
    """For each max/min: the name of the prim that made its input."""
    made = {o: e for e in walk_eqns(program.eqns) for o in e.outputs}
    return [made[e.inputs[0]].prim.name
            for e in walk_eqns(program.eqns) if e.prim.name in ("reduce_max", "reduce_min")]


def scaled_extrema(scale):
    def kernel(x):
        out = torch.empty([x.shape[0], 2], dtype=x.dtype)
        for t in tl.tile(x.shape[0]):
            s = x[t, :] * scale
            out[t, 0] = s.amax(-1)
            out[t, 1] = s.amin(-1) + s.sum(-1)  # (s keeps a use: only the extrema move)
        return out
    return kernel


ROWS = torch.tensor([[1.0, -3.0, 2.5, float("-inf")], [0.0, -0.0, 5e-39, -7.0],
                     [1.0, float("nan"), 2.0, 3.0], [3e38, -3e38, 1.0, 2.0]])


@pytest.mark.parametrize("scale", [0.125, 3, 1e-40, 7.5])
def test_positive_scale_moves_after_the_extremum_bit_for_bit(scale):
    program = tfn.make_ir(scaled_extrema(scale))(ROWS)
    new = scaled_max(program)
    assert reduced_inputs(program) == ["mul", "mul"] and reduced_inputs(new) == ["load", "load"]
    before, after = run_program(program, [ROWS.clone()]), run_program(new, [ROWS.clone()])
    torch.testing.assert_close(after, before, rtol=0, atol=0, equal_nan=True)
    s = ROWS * scale
    torch.testing.assert_close(after, torch.stack([s.amax(-1), s.amin(-1) + s.sum(-1)], -1), equal_nan=True)


@pytest.mark.parametrize("scale", [-0.5, 0.0, float("inf"), float("nan")])
def test_other_scales_are_left_alone(scale):
    program = tfn.make_ir(scaled_extrema(scale))(ROWS)
    assert reduced_inputs(scaled_max(program)) == ["mul", "mul"]


@pytest.mark.parametrize("name", ["attention", "causal_attention_split"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_takes_the_max_of_the_unscaled_scores_and_matches_sdpa(name, dtype):
    torch.manual_seed(0)
    q, k, v = attention.make_inputs("cpu", dtype, (1, 2, 40, 16))
    kernel = getattr(attention, name)
    source = kernel.lower(q, k, v).source
    dot = next(line.split(" = ")[0].strip() for line in source.splitlines() if "tl.dot(qb" in line)
    assert f"({dot}, axis=1" in source or f"({dot}, 1, " in source  # the max of the dot's own result
    expected = attention.reference(q.float(), k.float(), v.float(), causal=name != "attention")
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(kernel(q, k, v).float(), expected, **tol)
    torch.testing.assert_close(kernel(q, k, v), tfn.interpret(kernel)(q, k, v), **tol)
