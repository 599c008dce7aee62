"""Three oracles agree: the compiled kernel (Triton's CPU interpreter), `tfn.interpret` and eager PyTorch.

Hypothesis draws, per kernel of a small corpus, the shapes (ragged edges included), the dtype and a
power-of-two block size per block symbol of the traced Program. Every drawn Config is run twice:
`kernel.lower(*args, config=cfg).compile()(*args)` and `tfn.interpret(fn, config=cfg)(*args)`;
both must match the eager reference written here, with dtype-appropriate tolerances.

Triton's interpreter costs ~1-3 ms per program instance, so shapes stay small and block sizes are
drawn so that each grid dimension has at most a handful of tiles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tilefn as tfn
from tilefn.testing import compile_for_gpu

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")

HALF = (torch.float16, torch.bfloat16)
FLOATS = (torch.float32, torch.float16, torch.bfloat16)
# (atol, rtol) by output dtype. Half-precision kernels compute in float32 and round once per op.
TOL = {torch.float32: (2e-4, 2e-4), torch.float16: (1e-2, 1e-2), torch.bfloat16: (4e-2, 4e-2),
       torch.float64: (1e-9, 1e-9)}
EXACT = (torch.int32, torch.int64, torch.bool, torch.int16, torch.int8, torch.uint8)
MAX_TILES = 6  # per grid dimension: bounds the number of (slow) interpreted program instances


# --- kernels -------------------------------------------------------------------------------
from corpus_elementwise import *  # noqa: E402,F401,F403  (k_* kernels and r_* references)
from corpus_kernels import *  # noqa: E402,F401,F403


# --- inputs ----------------------------------------------------------------------------------
def randn(shape, dtype):
    return torch.randn(shape, dtype=torch.float32).to(dtype)


def size(draw, lo=1, hi=70):
    return draw(st.integers(lo, hi))


def laid_out(draw, t):
    """`t`, or a copy of it with the same values in a transposed or offset, strided layout."""
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided"]), label="layout")
    if layout == "transposed":
        return t.t().contiguous().t()
    if layout == "strided":
        big = torch.zeros((t.shape[0] + 1, t.shape[1] * 2), dtype=t.dtype)
        big[1:, ::2] = t
        return big[1:, ::2]
    return t


def two(draw, dtype):
    m, n = size(draw), size(draw)
    x, y = randn((m, n), dtype), randn((m, n), dtype)
    return laid_out(draw, x), y


def two_ties(draw, dtype):
    """Values on a coarse grid, so equal elements (ties) occur."""
    m, n = size(draw), size(draw)
    return ((torch.randint(-4, 5, (m, n)) / 2).to(dtype), (torch.randint(-4, 5, (m, n)) / 2).to(dtype))


def two_ints(draw, dtype):
    m, n = size(draw), size(draw)
    x = torch.randint(-50, 51, (m, n), dtype=dtype)
    y = torch.randint(1, 8, (m, n), dtype=dtype) * (torch.randint(0, 2, (m, n), dtype=dtype) * 2 - 1)
    return x, y


def two_floats_divmod(draw, dtype):
    m, n = size(draw), size(draw)
    x = (torch.randint(-40, 41, (m, n)) / 4).to(dtype)
    y = (torch.randint(1, 8, (m, n)) * (torch.randint(0, 2, (m, n)) * 2 - 1) / 2).to(dtype)
    return x, y


def one(draw, dtype):
    return (randn((size(draw), size(draw)), dtype),)


def one_ties(draw, dtype):
    return ((torch.randint(-3, 4, (size(draw), size(draw))) / 2).to(dtype),)


def one_int(draw, dtype):
    bound = draw(st.sampled_from([100, 2 ** 30]), label="int magnitude")
    return (torch.randint(-bound, bound + 1, (size(draw), size(draw)), dtype=dtype),)


def one_prod(draw, dtype):
    m, n = size(draw), size(draw, 1, 40)
    return ((1 + 0.05 * torch.randn(m, n)).to(dtype),)


def norm_args(draw, dtype):
    m, n = size(draw), size(draw)
    return randn((m, n), dtype), randn((n,), dtype), randn((n,), dtype)


def rms_args(draw, dtype):
    m, n = size(draw), size(draw)
    return randn((m, n), dtype), randn((n,), dtype)


def pow2_cols(draw, dtype):
    return (randn((size(draw), draw(st.sampled_from([2, 4, 8, 16, 32]))), dtype),)


def mm_args(draw, dtype):
    m, k, n = size(draw, 1, 50), size(draw, 1, 50), size(draw, 1, 50)
    return randn((m, k), dtype), randn((k, n), dtype)


def addmm_args(draw, dtype):
    x, y = mm_args(draw, dtype)
    return x, y, randn((y.shape[1],), dtype)


def bmm_args(draw, dtype):
    b, m, k, n = size(draw, 1, 3), size(draw, 1, 24), size(draw, 1, 40), size(draw, 1, 24)
    return randn((b, m, k), dtype), randn((b, k, n), dtype)


def embedding_args(draw, dtype):
    rows, num, dim = size(draw, 1, 40), size(draw, 1, 40), size(draw, 1, 40)
    index_dtype = draw(st.sampled_from([torch.int64, torch.int32]))
    return torch.randint(0, rows, (num,), dtype=index_dtype), randn((rows, dim), dtype)


def pick_args(draw, dtype):
    n, v = size(draw), size(draw)
    return randn((n, v), dtype), torch.randint(0, v, (n,), dtype=torch.int64)


def jagged_args(draw, dtype):
    lengths = draw(st.lists(st.integers(0, 30), min_size=1, max_size=5))
    d = size(draw, 1, 40)
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.tensor(lengths), 0)
    return randn((int(offsets[-1]), d), dtype), offsets


def one_coarse(draw, dtype):
    """Eighths in [-3, 3]: x - 10 and x + 10 stay exact in bfloat16, so arg-reductions are well defined
    (Triton's CPU interpreter truncates float32 -> bfloat16 instead of rounding: see test_rules.py)."""
    values = (torch.randint(-24, 25, (size(draw), size(draw))) / 8).to(dtype)
    return (laid_out(draw, values),)


def scalar_args(draw, dtype):
    scale = draw(st.sampled_from([0.5, -2.0, 3.0]))
    return randn((size(draw, 1, 40), size(draw, 1, 12)), dtype), scale


def small_int_args(draw, dtype):
    m, n = size(draw), size(draw)
    return (torch.randint(-100, 100, (m, n), dtype=torch.int8), torch.randint(0, 255, (m, n), dtype=torch.uint8),
            torch.rand(m, n) > 0.5)


def two_f64(draw, dtype):
    m, n = size(draw), size(draw)
    return torch.randn(m, n, dtype=torch.float64), torch.randn(m, n, dtype=torch.float64)


def with_nan_inf(draw, dtype):
    m, n = size(draw), size(draw)
    x = torch.randn(m, n)
    special = torch.rand(m, n)
    x[special < 0.05] = float("nan")
    x[(special >= 0.05) & (special < 0.08)] = float("inf")
    x[(special >= 0.08) & (special < 0.11)] = float("-inf")
    return (x.to(dtype),)


def two_loops_args(draw, dtype):
    return randn((size(draw),), dtype), randn((size(draw), size(draw)), dtype)


@dataclass(frozen=True)
class Case:
    fn: Callable
    args: Callable
    ref: Callable
    dtypes: tuple = FLOATS
    tol: dict = field(default_factory=dict)  # per output dtype, overrides TOL
    ref_needs_config: bool = False

    @property
    def name(self):
        return self.fn.__name__.removeprefix("k_")


CASES = [
    # several ops, each rounded to the half dtype, with cancellation: errors of 1 ulp of the intermediates (~8)
    Case(k_arith, two, r_arith, tol={torch.bfloat16: (0.15, 4e-2), torch.float16: (0.02, 1e-2)}),
    Case(k_compare_where, two_ties, r_compare_where),
    Case(k_clamp_minmax, two, r_clamp_minmax),
    Case(k_pow, two, r_pow, tol={torch.float32: (1e-3, 1e-4)}),
    Case(k_unary_math, two, r_unary_math, tol={torch.float32: (1e-3, 1e-4)}),
    Case(k_casts, one, r_casts, dtypes=(torch.float32,)),
    Case(k_int_ops, two_ints, r_int_ops, dtypes=(torch.int32, torch.int64)),
    Case(k_float_divmod, two_floats_divmod, r_float_divmod),
    Case(k_gelu_silu, two, r_gelu_silu, tol={torch.float32: (1e-3, 1e-4)}),
    Case(k_row_reduce, one, r_row_reduce),
    Case(k_col_reduce, one, r_col_reduce),
    Case(k_arg_reduce, one_ties, r_arg_reduce),
    Case(k_prod, one_prod, r_prod),
    Case(k_int_sum, one_int, r_int_sum, dtypes=(torch.int32,)),
    Case(k_softmax, one, r_softmax),
    Case(k_layer_norm, norm_args, r_layer_norm),
    Case(k_rms_norm, rms_args, r_rms_norm),
    Case(k_views, one, r_views),
    Case(k_reshape, pow2_cols, r_reshape),
    # acc + matmul(half, half): each k-tile's product is rounded to the half dtype before it is added,
    # so the result differs from one fp32 matmul (and between implementations) by a few ulps per k-tile.
    Case(k_matmul, mm_args, r_matmul, tol={torch.bfloat16: (0.25, 4e-2), torch.float16: (0.03, 1e-2)}),
    Case(k_addmm_epilogue, addmm_args, r_addmm_epilogue),
    Case(k_bmm, bmm_args, r_bmm),
    Case(k_tl_dot, mm_args, r_tl_dot, dtypes=(torch.float32, torch.bfloat16)),
    Case(k_embedding, embedding_args, r_embedding),
    Case(k_pick, pick_args, r_pick),
    Case(k_jagged, jagged_args, r_jagged),
    Case(k_two_carry, one, r_two_carry),
    Case(k_two_loops, two_loops_args, r_two_loops, dtypes=(torch.float32,)),
    Case(k_padded_reduce, one_coarse, r_padded_reduce, tol={torch.float32: (1e-3, 1e-4)}),
    Case(k_bool_reduce, one, r_bool_reduce),
    Case(k_looped_reduce, one, r_looped_reduce, tol={torch.float32: (1e-3, 1e-4)}),
    # running sums of ~70 values cancel: bf16 results near 0 carry the ulps of partial sums up to ~10
    Case(k_cumsum, one, r_cumsum, tol={torch.bfloat16: (0.13, 4e-2), torch.float16: (0.02, 1e-2)}),
    Case(k_tile_attrs, one, r_tile_attrs, dtypes=(torch.float32,), ref_needs_config=True),
    Case(k_scalar_index_loop, scalar_args, r_scalar_index_loop),
    Case(k_fixed_blocks, one, r_fixed_blocks),
    Case(k_dot_fused, mm_args, r_dot_fused, tol={torch.float32: (1e-3, 1e-4), torch.float16: (0.05, 1e-2), torch.bfloat16: (0.3, 4e-2)}),
    Case(k_small_ints, small_int_args, r_small_ints, dtypes=(None,)),
    Case(k_float64, two_f64, r_float64, dtypes=(torch.float64,)),
    Case(k_nan_inf, with_nan_inf, r_nan_inf),
]


# --- checking --------------------------------------------------------------------------------
def draw_config(draw, program) -> tfn.Config:
    """A power-of-two block size per block symbol, from a few tiles per dimension to one tile."""
    sizes = []
    for block in program.blocks:
        extent = max(block.extent or 32, 1)  # None: bounds only known on the device; <= 0: an empty loop
        top = max(0, math.ceil(math.log2(extent)))  # one tile covers the extent
        low = max(0, top - int(math.log2(MAX_TILES)) - 1)
        sizes.append(2 ** draw(st.integers(low, top), label=f"log2 block {block.id}"))
    indexing = draw(st.sampled_from(["pointer", "block_ptr", "tensor_descriptor"]), label="indexing")
    return tfn.Config(block_sizes=sizes, num_warps=draw(st.sampled_from([1, 2, 4])), indexing=indexing)


def flat(value):
    return value if isinstance(value, tuple) else (value,)


def assert_agree(got, want, case, dtype, what):
    """Outputs equal (integers, bools) or close for the output dtype, or for the half dtype the inputs had."""
    got, want = flat(got), flat(want)
    assert len(got) == len(want), what
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape, f"{what} output {i}: {g.dtype}{list(g.shape)} vs {w.dtype}{list(w.shape)}"
        if w.dtype in EXACT:
            assert torch.equal(g, w), f"{what} output {i} differs"
        else:
            key = dtype if dtype in HALF and w.dtype == torch.float32 else w.dtype
            atol, rtol = case.tol.get(key, TOL[key])
            torch.testing.assert_close(g, w, atol=atol, rtol=rtol, equal_nan=True, msg=lambda m: f"{what} output {i}: {m}")


SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))


def check(case, data, device="cpu"):
    """Draw inputs and a Config; compiled, interpreted and eager results agree (compared on the CPU)."""
    dtype = data.draw(st.sampled_from(case.dtypes), label="dtype")
    torch.manual_seed(data.draw(st.integers(0, 2 ** 16), label="seed"))
    args = case.args(data.draw, dtype)
    program = tfn.make_ir(case.fn)(*args)
    config = draw_config(data.draw, program)
    before = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    expected = case.ref(*before, **({"config": config} if case.ref_needs_config else {}))
    if device != "cpu":
        args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)
    if data.draw(st.booleans(), label="through tfn.jit(fn, config=cfg)"):
        compiled = tfn.jit(case.fn, config=config)(*args)
    else:
        compiled = tfn.jit(case.fn).lower(*args, config=config).compile()(*args)
    interpreted = tfn.interpret(case.fn, config=config)(*args)
    compiled, interpreted = (tuple(v.cpu() for v in flat(out)) for out in (compiled, interpreted))
    assert_agree(interpreted, expected, case, dtype, f"interpret vs eager under {config}")
    assert_agree(compiled, expected, case, dtype, f"compiled vs eager under {config}")
    assert_agree(compiled, interpreted, case, dtype, f"compiled vs interpret under {config}")
    for a, b in zip(args, before):
        assert not isinstance(a, torch.Tensor) or torch.equal(a.cpu().nan_to_num(), b.nan_to_num()), "an input was modified"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@SETTINGS
@given(data=st.data())
def test_compiled_equals_interpret_equals_eager(case, data):
    check(case, data)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_compiled_on_gpu_equals_interpret_equals_eager(case, data):
    """The same corpus compiled for the GPU (tl.dot on tensor cores, real bf16 rounding)."""
    check(case, data, device="cuda")


@SETTINGS
@given(data=st.data())
def test_default_config_agrees(data):
    """Without a Config, the heuristic default is used by jit and by the interpreter alike."""
    case = data.draw(st.sampled_from([c for c in CASES if c.fn in (k_arith, k_softmax, k_matmul, k_row_reduce)]))
    dtype = data.draw(st.sampled_from(case.dtypes))
    args = case.args(data.draw, dtype)
    got = tfn.jit(case.fn)(*args)
    assert_agree(got, case.ref(*args), case, dtype, "jit (default config) vs eager")
    assert_agree(got, tfn.interpret(case.fn)(*args), case, dtype, "jit vs interpret (default config)")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_compiles_for_hopper_without_a_gpu(case, data):
    check_compiles_for_hopper(case, data)


def check_compiles_for_hopper(case, data):
    """What the interpreter runs also compiles for sm_90 (Triton's front end and ptxas, no GPU needed)."""
    dtype = data.draw(st.sampled_from(case.dtypes), label="dtype")
    args = case.args(data.draw, dtype)
    config = draw_config(data.draw, tfn.make_ir(case.fn)(*args))
    compiled = compile_for_gpu(case.fn, *args, config=config)
    assert ".target sm_90" in compiled.asm["ptx"]
