"""Golden tests of single lowering rules: the Triton lines that tiny kernels lower to.

Each test lowers a kernel of one or two operations and asserts on the lines that must (or must
not) be in the kernel source, never on a whole-kernel snapshot.
"""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import TilefnError
from tilefn.lower import rules
from tilefn.lower.codegen import write_kernel
from tilefn.lower.sites import sites_of
from tilefn.lower.emit import Emitter
from tilefn.lower.masks import analyze_masks
from tilefn.trace.ir import Eqn, Var
from tilefn.trace.primitives import P, Primitive
from tilefn.trace.types import TensorType
from kernels import bmm, matmul

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def lower(fn, *args, blocks, gpu=False):
    lowered = tfn.jit(fn).lower(*args, config=tfn.Config(block_sizes=blocks))
    if gpu:  # what the rules emit for a CUDA device (no GPU needed to generate the text)
        return write_kernel(lowered.program, lowered.config, lowered.sites, interpret=False).kernel
    return lowered.kernel.kernel


def lines(source: str) -> list[str]:
    return [line.strip() for line in source.splitlines() if line.strip()]


def body(source: str) -> str:
    """The kernel body only (not the signature or imports)."""
    return source.split("pid = tl.program_id(0)", 1)[1]


# --- kernels -----------------------------------------------------------------------------------
def add(x, y):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        a = x[t]
        b = y[t]
        c = a + b
        out[t] = c
    return out


def row_reductions(x):
    m, n = x.shape
    biggest = torch.empty([m], dtype=x.dtype, device=x.device)
    total = torch.empty([m], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        row = x[tm, :]
        biggest[tm] = torch.amax(row, dim=1)
        total[tm] = torch.sum(row, dim=1)
    return biggest, total


def row_sum_of_exp(x):
    m, n = x.shape
    total = torch.empty([m], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        total[tm] = torch.sum(torch.exp(x[tm, :]), dim=1)
    return total


def exp(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = torch.exp(x[t])
    return out


def converts(x):
    halves = torch.empty(x.shape, dtype=torch.float16, device=x.device)
    ints = torch.empty(x.shape, dtype=torch.int32, device=x.device)
    flags = torch.empty(x.shape, dtype=torch.bool, device=x.device)
    for t in tl.tile(x.shape[0]):
        v = x[t]
        halves[t] = v.to(torch.float16)
        ints[t] = v.to(torch.int32)
        flags[t] = v.to(torch.bool)
    return halves, ints, flags


def store_bf16(x):
    out = torch.empty(x.shape, dtype=torch.bfloat16, device=x.device)
    for t in tl.tile(x.shape[0]):
        acc = x[t] * 2
        out[t] = acc
    return out


def int_divmod(x, y):
    q = torch.empty_like(x)
    r = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        a, b = x[t], y[t]
        q[t] = torch.floor_divide(a, b)
        r[t] = a % b
    return q, r


def min_max(x, y):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = torch.maximum(x[t], y[t]) + torch.minimum(x[t], y[t])
    return out


def powers(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        a = x[t]
        out[t] = a ** 2 + a ** 0.5 + a ** 1.5
    return out


def row_prod(x):
    out = torch.empty([x.shape[0]], dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.shape[0]):
        out[tm] = torch.prod(x[tm, :], dim=1)
    return out


def row_argmax(x):
    out = torch.empty([x.shape[0], 1], dtype=torch.int64, device=x.device)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = torch.argmax(x[tm, :], dim=1, keepdim=True)
    return out


def select(x, y):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = torch.where(x[t] > 0, x[t], y[t])
    return out


def gather(idx, table):
    out = torch.empty([idx.shape[0], table.shape[1]], dtype=table.dtype, device=table.device)
    for tb, td in tl.tile([idx.shape[0], table.shape[1]]):
        out[tb, td] = table[idx[tb], td]
    return out


# --- pointwise ---------------------------------------------------------------------------------
def test_add_of_two_tiles():
    src = lower(add, torch.randn(64), torch.randn(64), blocks=[16])
    got = lines(src)
    assert "a = tl.load(x + offs_t)" in got
    assert "b = tl.load(y + offs_t)" in got
    assert "c = a + b" in got
    assert "tl.store(out + offs_t, c)" in got
    assert "mask" not in src


def test_masked_load_and_store():
    got = lines(lower(add, torch.randn(50), torch.randn(50), blocks=[16]))
    assert "mask_t = offs_t < 50" in got
    assert "a = tl.load(x + offs_t, mask=mask_t, other=0)" in got
    assert "tl.store(out + offs_t, c, mask=mask_t)" in got


def test_exp_on_bf16_computes_in_float32_and_rounds_back():
    got = lines(lower(exp, torch.randn(64, dtype=torch.bfloat16), blocks=[16], gpu=True))
    assert any(line.endswith("= (tl.exp(v.to(tl.float32))).to(tl.bfloat16)") for line in got), got


def test_exp_on_float32_has_no_casts():
    src = lower(exp, torch.randn(64), blocks=[16])
    assert "tl.exp(v)" in src and ".to(" not in body(src)


def test_converts():
    got = lines(lower(converts, torch.randn(64), blocks=[16], gpu=True))
    assert any(line.endswith("= v.to(tl.float16)") for line in got)
    assert any(line.endswith("= v.to(tl.int32)") for line in got)
    assert any(line.endswith("= (v != 0)") for line in got), "float -> bool is a comparison with 0, not a cast"


def test_store_of_float32_into_bf16_tensor_casts():
    got = lines(lower(store_bf16, torch.randn(64), blocks=[16], gpu=True))
    casts = [line for line in got if line.endswith("acc.to(tl.bfloat16)")]
    assert len(casts) == 1, got
    name = casts[0].split(" = ")[0]
    assert f"tl.store(out + offs_t, {name})" in got


def test_integer_floor_divide_and_remainder_round_toward_negative_infinity():
    x = torch.randint(-9, 9, (64,), dtype=torch.int32)
    src = lower(int_divmod, x, x, blocks=[16])
    got = lines(src)
    assert "quot = a // b" in got
    assert any(line.endswith("= quot - (((a % b) != 0) & ((a < 0) != (b < 0))).to(quot.dtype)") for line in got)
    assert "rem = a % b" in got
    assert any(line.endswith("= tl.where((rem != 0) & ((rem < 0) != (b < 0)), rem + b, rem)") for line in got)


def test_float_maximum_propagates_nan():
    src = lower(min_max, torch.randn(64), torch.randn(64), blocks=[16])
    assert "tl.maximum(v, v_1, propagate_nan=tl.PropagateNan.ALL)" in src
    assert "tl.minimum(v, v_1, propagate_nan=tl.PropagateNan.ALL)" in src
    ints = lower(min_max, torch.arange(64, dtype=torch.int32), torch.arange(64, dtype=torch.int32), blocks=[16])
    assert "tl.maximum(v, v_1)" in ints and "propagate_nan" not in ints


def test_pow_with_small_literal_exponents_is_strength_reduced():
    src = lower(powers, torch.rand(64), blocks=[16])
    assert "a * a" in src
    assert "tl.sqrt(a)" in src
    assert "tl.exp2(1.5 * tl.log2(a))" in src


def test_where():
    src = lower(select, torch.randn(64), torch.randn(64), blocks=[16])
    assert "tl.where(" in src and " > 0" in src


def test_gather_loads_the_index_then_the_rows():
    src = lower(gather, torch.randint(0, 10, (32,)), torch.randn(10, 16), blocks=[16, 16])
    got = lines(src)
    index = next(line for line in got if "tl.load(idx + offs_tb)" in line).split(" = ")[0]
    assert f"tl.load(table + {index}[:, None] * 16 + offs_td[None, :], mask=" in src
    assert f"{index} >= 0" in src and f"{index} < 10" in src  # rows outside the table are masked


# --- reductions --------------------------------------------------------------------------------
def test_row_reduction_without_mask_when_the_row_is_a_power_of_two():
    src = lower(row_reductions, torch.randn(32, 64), blocks=[16], gpu=True)
    assert "mask" not in src and "tl.where" not in src
    assert "tl.reduce(row, 1, _max_nan_combine, keep_dims=False)" in src
    assert "tl.sum(row, axis=1, keep_dims=False)" in src


def test_row_reduction_with_mask_on_a_ragged_row():
    src = lower(row_reductions, torch.randn(32, 50), blocks=[16], gpu=True)
    got = lines(src)
    assert "mask_" not in src  # the row is a full slice: a static mask, no tile mask
    assert "row_masked = tl.where((tl.arange(0, 64) < 50)[None, :], row, float(\"-inf\"))" in got
    assert "tl.reduce(row_masked, 1, _max_nan_combine, keep_dims=False)" in src
    # the load pads with 0, which is already the identity of a sum: no second tl.where
    assert "tl.sum(row, axis=1, keep_dims=False)" in src
    assert src.count("tl.where") == 1


def test_sum_of_values_not_zero_padded_is_masked():
    src = lower(row_sum_of_exp, torch.randn(32, 50), blocks=[16])
    assert "tl.where((tl.arange(0, 64) < 50)[None, :], " in src and ", 0)" in src
    same = lower(row_sum_of_exp, torch.randn(32, 64), blocks=[16])
    assert "tl.where" not in same


def test_float_max_and_min_propagate_nan_like_torch():
    """tl.max / tl.min skip NaN; torch.amax / amin return it: the rule reduces with NaN-propagating combines."""
    def kernel(x):
        hi = torch.empty([x.shape[0]], dtype=x.dtype, device=x.device)
        lo = torch.empty([x.shape[0]], dtype=x.dtype, device=x.device)
        for tm in tl.tile(x.shape[0]):
            hi[tm] = torch.amax(x[tm, :], dim=1)
            lo[tm] = torch.amin(x[tm, :], dim=1)
        return hi, lo

    nan, inf = float("nan"), float("inf")
    x = torch.tensor([[1.0, nan, 3.0, -1.0], [inf, 2.0, -inf, 0.0], [1.0, 2.0, 3.0, 4.0]])
    src = lower(kernel, x, blocks=[4], gpu=True)  # (the CPU interpreter: a vectorised form, tested below)
    assert "def _max_nan_combine(a, b):" in src and "def _min_nan_combine(a, b):" in src
    assert "propagate_nan=tl.PropagateNan.ALL" in src
    hi, lo = tfn.jit(kernel, config=tfn.Config(block_sizes=[4]))(x)
    torch.testing.assert_close(hi, x.amax(1), equal_nan=True)
    torch.testing.assert_close(lo, x.amin(1), equal_nan=True)
    ints = lower(kernel, torch.arange(12, dtype=torch.int32).reshape(3, 4), blocks=[4])
    assert "tl.max(" in ints and "_nan_combine" not in ints  # integers have no NaN


def test_integer_sum_accumulates_in_int64_like_torch():
    def kernel(x):
        out = torch.empty([x.shape[0]], dtype=torch.int64, device=x.device)
        for tm in tl.tile(x.shape[0]):
            out[tm] = torch.sum(x[tm, :], dim=1)
        return out

    x = torch.full((2, 4), 2 ** 30, dtype=torch.int32)
    assert "tl.sum(v.to(tl.int64), axis=1" in lower(kernel, x, blocks=[2])
    assert torch.equal(tfn.jit(kernel)(x), x.sum(1))


def test_prod_uses_a_combine_helper_and_identity_one():
    src = lower(row_prod, torch.randn(8, 10), blocks=[8])
    assert "def _mul_combine(a, b):" in src
    assert "tl.reduce(" in src and "_mul_combine" in src
    assert "< 10)[None, :], " in src and ", 1)" in src


def test_argmax_keeps_dims_and_returns_int64():
    src = lower(row_argmax, torch.randn(8, 10), blocks=[8])
    assert "tl.argmax(" in src and "keep_dims=True" in src and ".to(tl.int64)" in src
    assert 'float("-inf")' in src


# --- matrix product ----------------------------------------------------------------------------
def test_dot_accumulates_in_float32():
    x, y = torch.randn(64, 64), torch.randn(64, 64)
    src = lower(matmul, x, y, blocks=[32, 32, 32])
    assert "tl.dot(" in src and "out_dtype=tl.float32" in src
    assert 'input_precision="ieee"' in src  # float32 inputs: no silent tf32


@pytest.mark.parametrize("precision", ["tf32", "tf32x3"])
def test_dot_precision_reaches_tl_dot(precision):
    x, y = torch.randn(64, 64), torch.randn(64, 64)
    lowered = tfn.jit(matmul, dot_precision=precision).lower(x, y, config=tfn.Config(block_sizes=[32, 32, 32]))
    assert f'input_precision="{precision}"' in lowered.kernel.kernel
    assert f"dot[precision={precision}]" in str(lowered.program)  # the IR says it too


def test_dot_precision_is_checked():
    with pytest.raises(ValueError, match="dot_precision must be one of"):
        tfn.jit(matmul, dot_precision="fp16")


def test_dot_keeps_bf16_operands_on_gpu():
    x, y = (torch.randn(64, 64, dtype=torch.bfloat16) for _ in range(2))
    gpu = lower(matmul, x, y, blocks=[32, 32, 32], gpu=True)
    dot = next(line for line in lines(gpu) if "tl.dot(" in line)
    assert "out_dtype=tl.float32" in dot
    assert ".to(tl.float32)" not in dot, "tensor cores take bf16 operands"
    assert "acc_1.to(tl.bfloat16)" in gpu
    cpu = lower(matmul, x, y, blocks=[32, 32, 32])
    assert ".to(tl.float32)" in next(line for line in lines(cpu) if "tl.dot(" in line)


def test_dot_with_a_ragged_k_masks_the_operands_only_when_not_zero_padded():
    x, y = torch.randn(32, 40), torch.randn(40, 32)
    src = lower(matmul, x, y, blocks=[16, 16, 16])
    assert "mask_tk = offs_tk < 40" in src
    dot = next(line for line in lines(src) if "tl.dot(" in line)
    assert "tl.where" not in dot  # the loads pad the k lanes with 0


def test_dot_smaller_than_16_falls_back_to_multiply_and_sum_over_a_leading_k():
    """tl.dot needs 16 lanes per dimension. The fallback puts k first: Triton 3.6 rewrites the form
    sum(a[:, :, None] * b[None, :, :], axis=1) into a tf32 tl.dot that is wrong on GPU for k < 8."""
    x, y = torch.randn(32, 8), torch.randn(8, 32)
    src = lower(matmul, x, y, blocks=[16, 16, 4])
    assert "tl.dot(" not in src
    assert "tl.sum(tl.permute(v.to(tl.float32), (1, 0))[:, :, None] * v_1.to(tl.float32)[:, None, :], axis=0)" in src
    assert "axis=1" not in src
    torch.testing.assert_close(tfn.jit(matmul, config=tfn.Config(block_sizes=[16, 16, 4]))(x, y), x @ y)


def test_batched_small_dot_puts_k_first_too():
    x, y = torch.randn(2, 16, 4), torch.randn(2, 4, 16)
    src = lower(bmm, x, y, blocks=[2, 16, 16, 4])
    assert "tl.permute(v.to(tl.float32), (0, 2, 1))[:, :, :, None] * v_1.to(tl.float32)[:, :, None, :], axis=1)" in src
    torch.testing.assert_close(tfn.jit(bmm, config=tfn.Config(block_sizes=[2, 16, 16, 4]))(x, y), x @ y)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("k, bk", [(1, 1), (3, 2), (9, 4), (16, 8)])
def test_small_k_blocks_on_gpu(k, bk):
    x, y = torch.randn(20, k, device="cuda"), torch.randn(k, 24, device="cuda")
    out = tfn.jit(matmul, config=tfn.Config(block_sizes=[16, 16, bk]))(x, y)
    torch.testing.assert_close(out, x @ y, atol=1e-4, rtol=1e-4)


# --- the registry ------------------------------------------------------------------------------
def test_every_rule_is_registered_once():
    with pytest.raises(ValueError, match="registered twice"):
        rules.rule(P["add"])(lambda em, eqn: None)


def test_missing_rule_is_a_clear_error():
    program = tfn.make_ir(add)(torch.randn(16), torch.randn(16))
    em = Emitter(program, tfn.Config(block_sizes=[16]), sites_of(program), analyze_masks(program), interpret=True)
    eqn = Eqn(Primitive("no_such_prim"), (), (Var(TensorType((), torch.float32)),), {}, None)
    with pytest.raises(TilefnError, match="no Triton lowering for primitive 'no_such_prim'"):
        rules.lower_eqn(em, eqn)


# --- known bugs --------------------------------------------------------------------------------
def to_bf16(x):
    out = torch.empty(x.shape, dtype=torch.bfloat16, device=x.device)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t]
    return out


def test_cpu_bf16_conversion_rounds_to_nearest():
    x = torch.tensor([-9.6836, 1.99999, 1.01171875, 0.1, -0.3, 255.9, 3.0, 1.0 + 2 ** -8 + 2 ** -10])
    got = tfn.jit(to_bf16)(x)
    assert torch.equal(got, x.to(torch.bfloat16))


# --- casts, reductions and comparisons as torch computes them (CPU interpreter included) ----------
def _to(dtype):
    def kernel(x):
        out = torch.empty(x.shape, dtype=dtype)
        for t in tl.tile(x.shape[0]):
            out[t] = x[t].to(dtype)
        return out

    return kernel


SPECIALS = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 3.0e38, 1e-40, 1.00390625, 1.01171875]


@pytest.mark.parametrize("src", [torch.int32, torch.int64, torch.float32, torch.float64, torch.float16, torch.bool])
def test_casts_to_bfloat16_round_to_nearest_as_torch(src):
    """Triton 3.6's interpreter gave an int's bits for int -> bf16 and truncated f32 -> bf16."""
    values = torch.randn(2000, dtype=torch.float64) * 50
    if src.is_floating_point:
        values = torch.cat([values, torch.tensor(SPECIALS, dtype=torch.float64)])
    x = values.to(src)
    got, want = tfn.jit(_to(torch.bfloat16))(x), x.to(torch.bfloat16)
    torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("dst", [torch.int32, torch.float16, torch.float64, torch.float32])
def test_casts_from_bfloat16_as_torch(dst):
    x = (torch.randn(2000) * 100).to(torch.bfloat16)
    torch.testing.assert_close(tfn.jit(_to(dst))(x), x.to(dst), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("reduce", [torch.amax, torch.amin])
def test_row_max_and_min_propagate_nan_without_a_combine_loop(reduce, dtype):
    def kernel(x):
        out = torch.empty([x.shape[0]], dtype=x.dtype)
        for tm in tl.tile(x.shape[0]):
            out[tm] = reduce(x[tm, :], dim=1)
        return out

    x = torch.randn(16, 100).to(dtype)
    x[3, 7], x[5, :] = float("nan"), float("inf")
    torch.testing.assert_close(tfn.jit(kernel)(x), reduce(x, dim=1), equal_nan=True)
    assert "tl.reduce(" not in tfn.jit(kernel).lower(x).kernel.kernel  # vectorised under the interpreter


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_comparisons_with_a_number_round_it_to_the_half_dtype_as_torch(dtype):
    """bf16 0.30078125 > 0.3 is False in torch (0.3 rounds to bf16 first); it was True in tilefn."""
    def kernel(x):
        out = torch.empty(x.shape, dtype=torch.bool)
        for t in tl.tile(x.shape[0]):
            out[t] = (x[t] > 0.3) | (x[t] == 257) | (x[t] <= -0.1)
        return out

    x = torch.tensor([0.30078125, 0.2998046875, 0.3, 257, 256, 258, -0.1, -0.10009765625], dtype=dtype)
    assert torch.equal(tfn.jit(kernel)(x), (x > 0.3) | (x == 257) | (x <= -0.1))


def test_every_dtype_kernels_take_has_a_triton_dtype():
    """trace.types.KERNEL_DTYPES (what arguments may be) and emit.TL_DTYPES (what lowers) name one set."""
    from tilefn.lower.emit import TL_DTYPES
    from tilefn.trace.types import KERNEL_DTYPES

    assert set(TL_DTYPES) == KERNEL_DTYPES
