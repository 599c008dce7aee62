"""The default Config: good tiles without tuning, always valid (powers of two within the extents)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tilefn as tfn
from tilefn import lang as tl
from tilefn.lower.defaults import complete_config, default_config
from tilefn.trace.queries import next_power_of_2
from tilefn.trace.ir import walk_eqns
from kernels import bmm, matmul, softmax, two_pass_softmax

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def add2d(x, y):
    out = torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        out[tm, tn] = x[tm, tn] + y[tm, tn]
    return out


def long_sum(x):
    m, n = x.shape
    out = torch.empty([m], dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        acc = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(n):
            acc = acc + x[tm, tn].to(torch.float32).sum(dim=1)
        out[tm] = acc
    return out


def fixed(x):
    m, n = x.shape
    out = torch.empty_like(x)
    bn = tl.register_block_size(n)
    for tm in tl.tile(m, block_size=4):
        for tn in tl.tile(n, block_size=bn):
            out[tm, tn] = x[tm, tn] + 1
        for tn in tl.tile(n, block_size=bn):
            out[tm, tn] = out[tm, tn] * 2
    return out


def jagged(values, offsets):
    out = torch.empty([offsets.shape[0] - 1, values.shape[1]], dtype=torch.float32, device=values.device)
    for r in tl.grid(offsets.shape[0] - 1):
        for td in tl.tile(values.shape[1]):
            acc = tl.zeros([td], dtype=torch.float32)
            for tv in tl.tile(offsets[r], offsets[r + 1]):
                acc = acc + torch.sum(values[tv, td], dim=0)
            out[r, td] = acc
    return out


def config_of(fn, *args):
    program = tfn.make_ir(fn)(*args)
    return program, default_config(program)


def dot_blocks(program) -> set[int]:
    blocks = set()
    for eqn in walk_eqns(program.eqns):
        if eqn.prim.name == "dot":
            for var in eqn.inputs[:2]:
                blocks |= {d.block for d in var.type.shape if hasattr(d, "block")}
    return blocks


def assert_valid(program, config):
    """Powers of two, within the extents (tl.dot's tiles are at least 16), sane warps and stages."""
    dots = dot_blocks(program)
    assert len(config.block_sizes) == len(program.blocks)
    for block in program.blocks:
        size = config.block_sizes[block.id]
        assert size >= 1 and size & (size - 1) == 0, (block, size)
        if block.fixed:
            assert size == block.fixed
        elif block.extent is not None:
            limit = next_power_of_2(max(block.extent, 1))
            assert size <= (max(limit, 16) if block.id in dots else limit), (block, size)
    assert config.num_warps in (1, 2, 4, 8, 16, 32)
    assert config.num_stages is not None and 1 <= config.num_stages <= 5


# --- matmul ------------------------------------------------------------------------------------
def test_matmul_gets_wide_tiles_and_pipelining():
    program, config = config_of(matmul, torch.randn(512, 256), torch.randn(256, 1024))
    assert config.block_sizes == (128, 128, 64)
    assert config.num_stages == 3
    assert config.num_warps >= 4
    assert_valid(program, config)


def test_matmul_tiles_are_clamped_to_the_extents():
    program, config = config_of(matmul, torch.randn(37, 29), torch.randn(29, 50))
    assert config.block_sizes == (64, 64, 32)
    assert config.num_stages == 3
    assert_valid(program, config)


def test_matmul_tiles_stay_at_least_16_for_tl_dot():
    program, config = config_of(matmul, torch.randn(4, 3), torch.randn(3, 5))
    assert all(b == 16 for b in config.block_sizes)
    assert_valid(program, config)


def test_bmm_batch_dimension_gets_one_matrix_per_program():
    program, config = config_of(bmm, torch.randn(8, 256, 64), torch.randn(8, 64, 256))
    assert config.block_sizes == (1, 128, 128, 64)
    assert_valid(program, config)


# --- reductions and pointwise ------------------------------------------------------------------
def test_row_softmax_over_a_wide_row_gets_a_small_row_block():
    program, wide = config_of(softmax, torch.randn(1024, 4096))
    assert wide.block_sizes[0] <= 4
    assert_valid(program, wide)
    program, narrow = config_of(softmax, torch.randn(1024, 16))
    assert narrow.block_sizes[0] >= 32, "narrow rows: many rows per program"
    assert_valid(program, narrow)
    program, wider = config_of(softmax, torch.randn(1024, 16384))
    assert wider.block_sizes[0] == 1
    assert_valid(program, wider)
    assert wide.num_warps >= 4 and wider.num_warps > wide.num_warps, "warps scale with the tile"


def test_row_softmax_with_few_rows_stays_within_them():
    program, config = config_of(softmax, torch.randn(3, 16))
    assert config.block_sizes[0] <= 4
    assert_valid(program, config)


def test_pointwise_tiles_fill_a_program_innermost_first():
    program, config = config_of(add2d, torch.randn(1000, 1000), torch.randn(1000, 1000))
    bm, bn = config.block_sizes
    assert bn >= bm and 1024 <= bm * bn <= 16384
    assert_valid(program, config)


def test_inner_loop_blocks_are_within_their_extent():
    program, config = config_of(long_sum, torch.randn(64, 100000))
    assert config.block_sizes[1] >= 256
    assert_valid(program, config)
    program, config = config_of(long_sum, torch.randn(64, 50))
    assert config.block_sizes[1] == 64
    assert_valid(program, config)


def test_fixed_and_shared_block_sizes_are_kept():
    program, config = config_of(fixed, torch.randn(30, 40))
    loops = [e for e in walk_eqns(program.eqns) if e.prim.name == "loop"]
    (tm_block,), *inner = [[dim.block for _, dim in loop.params["dims"]] for loop in loops]
    assert config.block_sizes[tm_block] == 4
    assert inner[0] == inner[1], "both loops over n use the one registered block size"
    assert_valid(program, config)


def test_tiles_with_device_bounds_get_a_power_of_two():
    program, config = config_of(jagged, torch.randn(100, 64), torch.tensor([0, 50, 100]))
    assert_valid(program, config)



def jagged_mean(x_data, x_offsets, feature_counts, m: int):
    """Helion's jagged_mean form: a jagged loop over each row's features holding a jagged loop over its values."""
    rows = x_offsets.size(0) - 1
    out = torch.zeros([rows, m], dtype=x_data.dtype, device=x_data.device)
    x_flat = x_data.view(-1)
    for tb in tl.tile(rows):
        starts = x_offsets[tb]
        nnz = x_offsets[tb.index + 1] - starts
        counts = feature_counts[tb]
        for tm in tl.jagged_tile(counts):
            sums = tl.zeros([tb, tm], dtype=x_data.dtype)
            for tk in tl.jagged_tile(nnz):
                flat = (starts[:, None] + tk.index[None, :])[:, :, None] * m + tm.index[None, None, :]
                sums = sums + tl.load(x_flat, [flat]).sum(dim=1)
            out[tb, tm] = torch.where(nnz[:, None] > 0, sums / nnz[:, None].to(sums.dtype), 0.0)
    return out


def test_nested_jagged_loops_get_blocks_that_fit_a_program():
    """Each data-dependent extent got 1024 lanes: 1024 x 1024 values per program, 32 warps; Helion's
    jagged_mean example ran 2.1x slower than Helion's on the H200. Now the widest is halved until the
    program's largest value fits TILE_ELEMENTS; the result still equals eager torch."""
    from tilefn.lower.defaults import TILE_ELEMENTS
    from tilefn.trace.queries import kernel_eqns, largest_value

    lengths = torch.tensor([3, 0, 7, 1, 12])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    counts = torch.tensor([2, 4, 1, 4, 3], dtype=torch.int32)
    x = torch.randn(int(offsets[-1]), 4)
    program, config = config_of(jagged_mean, x, offsets, counts, 4)
    assert_valid(program, config)
    assert largest_value(kernel_eqns(program), config) <= TILE_ELEMENTS
    want = torch.zeros(5, 4)
    for r in range(5):
        rows = x[offsets[r]:offsets[r + 1], :counts[r]]
        if len(rows):
            want[r, :counts[r]] = rows.mean(0)
    torch.testing.assert_close(tfn.jit(jagged_mean)(x, offsets, counts, 4), want)


def test_default_config_is_deterministic():
    x, y = torch.randn(300, 200), torch.randn(200, 100)
    assert config_of(matmul, x, y)[1] == config_of(matmul, x.clone(), y.clone())[1]


# --- filling in a partial Config ---------------------------------------------------------------
def test_partial_config_is_completed_from_the_default():
    program = tfn.make_ir(matmul)(torch.randn(256, 256), torch.randn(256, 256))
    default = default_config(program)
    config = complete_config(program, tfn.Config(block_sizes=[32]))
    assert config.block_sizes == (32,) + tuple(default.block_sizes[1:])
    assert config.num_warps == default.num_warps and config.num_stages == default.num_stages
    config = complete_config(program, tfn.Config(block_sizes=[32, 32, 32], num_warps=2, num_stages=1))
    assert (config.block_sizes, config.num_warps, config.num_stages) == ((32, 32, 32), 2, 1)
    assert complete_config(program, None) == default


def test_fixed_block_sizes_override_the_config():
    program = tfn.make_ir(fixed)(torch.randn(30, 40))
    config = complete_config(program, tfn.Config(block_sizes=[64] * len(program.blocks)))
    for block in program.blocks:
        assert config.block_sizes[block.id] == (block.fixed or 64)


# --- any program, any shape --------------------------------------------------------------------
KERNELS = {
    "matmul": (matmul, lambda m, n, k: (torch.empty(m, k), torch.empty(k, n))),
    "bmm": (bmm, lambda m, n, k: (torch.empty(1 + m % 3, m, k), torch.empty(1 + m % 3, k, n))),
    "softmax": (softmax, lambda m, n, k: (torch.empty(m, n * k),)),
    "add2d": (add2d, lambda m, n, k: (torch.empty(m, n), torch.empty(m, n))),
    "long_sum": (long_sum, lambda m, n, k: (torch.empty(m, n * k),)),
}


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(KERNELS)), m=st.integers(1, 5000), n=st.integers(1, 3000),
       k=st.integers(1, 300))
def test_every_default_block_is_a_power_of_two_within_its_extent(name, m, n, k):
    fn, make = KERNELS[name]
    program, config = config_of(fn, *make(m, n, k))
    assert_valid(program, config)


def test_only_very_wide_rows_are_reduced_in_chunks():
    def row_logsumexp(x):
        out = torch.empty([x.size(0)], dtype=x.dtype, device=x.device)
        for tm in tl.tile(x.size(0)):
            out[tm] = torch.logsumexp(x[tm, :], dim=1)
        return out

    wide = default_config(tfn.make_ir(row_logsumexp)(torch.empty(4, 32768)))
    assert wide.reduction_loops == (8192,) and wide.num_warps == 4
    narrow = default_config(tfn.make_ir(row_logsumexp)(torch.empty(4, 16384)))
    assert narrow.reduction_loops == ()


def test_a_wide_row_also_stored_stays_whole_up_to_32768():
    """Chunked, the store would read the row a second time (softmax; cross-entropy's derived backward)."""
    def row_softmax(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            out[tm, :] = torch.softmax(x[tm, :], dim=1)
        return out

    stored = default_config(tfn.make_ir(row_softmax)(torch.empty(4, 32768)))
    assert stored.reduction_loops == () and stored.num_warps == 32
    wider = default_config(tfn.make_ir(row_softmax)(torch.empty(4, 65536)))
    assert wider.reduction_loops == (8192,)


def linear(x, w):
    m, k = x.shape
    n, _ = w.shape
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = torch.addmm(acc, x[tm, tk], w[tn, tk].T)
        out[tm, tn] = acc.to(out.dtype)
    return out


def _default(kernel, *args):
    return tfn.jit(kernel).lower(*args).config


@pytest.mark.parametrize("dtype, size, wide", [(torch.bfloat16, 4096, True), (torch.bfloat16, 1024, False),
                                               (torch.float32, 4096, False)])
def test_large_16_bit_products_take_128x256_tiles_grouped_for_l2(dtype, size, wide):
    x, y = torch.empty(size, size, dtype=dtype), torch.empty(size, size, dtype=dtype)
    config = _default(matmul, x, y)
    assert (list(config.block_sizes), list(config.l2_groupings)) == (
        ([128, 256, 64], [8]) if wide else ([128, 128, 64], []))


def test_a_tile_the_product_takes_transposed_is_loaded_through_a_descriptor():
    x, w = torch.randn(256, 64), torch.randn(96, 64)
    config = _default(linear, x, w)
    assert list(config.indexing) == ["pointer", "tensor_descriptor", "pointer"]  # x, w, the store
    assert _default(matmul, x, w.T.contiguous()).indexing == "pointer"
    torch.testing.assert_close(tfn.jit(linear)(x, w), x @ w.T, atol=1e-4, rtol=1e-4)
    odd = torch.randn(96, 50)  # rows of 200 bytes: no descriptor can take them
    assert _default(linear, torch.randn(256, 50), odd).indexing == "pointer"


def scaled_rows(x, w):
    out = torch.empty_like(x)
    for tm in tl.tile(x.size(0)):
        out[tm, :] = x[tm, :] * w[None, :]
    return out


def test_a_loop_over_a_programs_chunk_of_rows_is_pipelined_with_a_grid_block():
    x, w = torch.empty(4096, 8192, dtype=torch.bfloat16), torch.empty(8192, dtype=torch.bfloat16)
    forward = default_config(tfn.make_ir(scaled_rows)(x, w))
    backward = default_config(tfn.make_ir(tfn.vjp(scaled_rows))(x, w, x))
    assert backward.block_sizes == forward.block_sizes == (1,)  # (a grid block's budget, not an inner loop's 1024)
    assert backward.range_num_stages == (3,) and backward.num_warps == 2 * forward.num_warps
    assert forward.range_num_stages == ()


@pytest.mark.parametrize("dtype, n, stages", [
    (torch.bfloat16, 128, 3),
    (torch.float32, 8192, 3),    # x and dy rows of 64 KiB: 2 prefetched rows in 3/4 of shared memory
    (torch.float32, 16384, 2),   # 128 KiB a row: only one prefetched row fits
    (torch.float32, 65536, 0),   # 512 KiB a row: no room to prefetch one
])
def test_a_chunk_loop_takes_3_stages_where_its_prefetches_fit_in_shared_memory_else_fewer(dtype, n, stages):
    x, w = torch.empty(64, n, dtype=dtype), torch.empty(n, dtype=dtype)
    config = default_config(tfn.make_ir(tfn.vjp(scaled_rows))(x, w, x))
    assert config.range_num_stages == ((stages,) if stages else ())


def test_softmax_backward_walks_chunks_of_rows_pipelined_with_at_most_16_warps_and_its_forward_does_not():
    x = torch.empty(4096, 16384, dtype=torch.bfloat16)
    forward = default_config(tfn.make_ir(softmax)(x))
    program = tfn.make_ir(tfn.vjp(softmax))(x, x)
    backward = default_config(program)
    assert forward.range_num_stages == () and forward.num_warps == 8
    assert backward.range_num_stages == (3,) and backward.num_warps == 16  # (2 x 16 capped at 16)
    assert [(t.name, t.value) for t in program.tunables] == [("vjp_rows_per_program", 8)]  # 512 programs
    wide = torch.empty(64, 65536, dtype=torch.bfloat16)  # rows looped in chunks: no row chunks
    program = tfn.make_ir(tfn.vjp(softmax))(wide, wide)
    looped = default_config(program)
    assert looped.range_num_stages == () and looped.reduction_loops == (8192,) and not program.tunables
    narrow = torch.empty(64, 8192, dtype=torch.bfloat16)  # several programs an SM already: no row chunks
    program = tfn.make_ir(tfn.vjp(softmax))(narrow, narrow)
    assert default_config(program).range_num_stages == () and not program.tunables


@pytest.mark.parametrize("n, whole", [(2048, True), (16384, True), (32768, False)])
def test_a_row_two_loops_read_is_held_whole_where_it_fits(n, whole):
    """Two sibling loops over one block (a two-pass softmax) walk it in one tile up to 16384 lanes, the rows
    a program holds cut to fit; one loop over a row (long_sum) keeps tiles of 1024."""
    program, config = config_of(two_pass_softmax, torch.empty(8, n))
    (grid_block,), (row_block,) = [[d.block for _, d in loop.params["dims"]] for loop in
                                   [e for e in walk_eqns(program.eqns) if e.prim.name == "loop"][:2]]
    assert config.block_sizes[row_block] == (n if whole else 1024)
    if whole:
        assert config.block_sizes[grid_block] == max(1, 4096 // n)  # (TILE_ELEMENTS a program)
    assert_valid(program, config)
    _, single = config_of(long_sum, torch.empty(8, 2048))
    assert single.block_sizes[1] == 1024


def test_two_pass_softmax_under_its_default_equals_torch_compiled_and_interpreted():
    x = torch.randn(6, 2048) * 4
    torch.testing.assert_close(tfn.jit(two_pass_softmax)(x), torch.softmax(x, dim=1))
    torch.testing.assert_close(tfn.interpret(two_pass_softmax)(x), torch.softmax(x, dim=1))


@pytest.mark.parametrize("dtype, warps", [(torch.bfloat16, 4), (torch.float32, 8)])
def test_reducing_across_rows_in_a_loop_takes_only_the_warps_the_columns_fill(dtype, warps):
    """A loop reducing over its tile's rows (jagged sums: tiles [16 rows, 1024 columns], 16 warps by size)
    gets as many warps as 16-byte loads of the last axis fill: 4 of bf16, 8 of fp32."""
    offsets = torch.tensor([0, 50, 100])
    program, config = config_of(jagged, torch.empty(100000, 1024, dtype=dtype), offsets)
    assert tuple(config.block_sizes) == (1024, 16) and config.num_warps == warps
    values = torch.randn(100, 300, dtype=dtype)
    want = torch.stack([values[:50].float().sum(0), values[50:].float().sum(0)])
    tol = {"rtol": 2e-2, "atol": 1e-1} if dtype == torch.bfloat16 else {"rtol": 1e-4, "atol": 1e-3}  # (bf16 partials)
    torch.testing.assert_close(tfn.jit(jagged)(values, offsets), want, **tol)
    torch.testing.assert_close(tfn.interpret(jagged)(values, offsets), want, **tol)


@pytest.mark.parametrize("n, rows, warps", [(4096, 1, 4), (8192, 2, 8), (16384, 1, 8)])
def test_programs_reducing_whole_wide_rows_hold_16384_elements_at_2048_a_warp(n, rows, warps):
    """Rows of 8192..16384 reduced whole: rows a program and warps from 16384 elements at 2048 a warp
    (narrower rows keep 4096 elements at 1024 a warp); softmax under that default equals torch."""
    x = torch.empty(64, n, dtype=torch.bfloat16)
    config = default_config(tfn.make_ir(softmax)(x))
    assert tuple(config.block_sizes) == (rows,) and config.num_warps == warps
    x = torch.randn(4, n)
    torch.testing.assert_close(tfn.jit(softmax)(x), torch.softmax(x, dim=1))


@pytest.mark.parametrize("shape, dtype, persistent", [
    ((64, 512, 512, 512), torch.bfloat16, True),  # 512 tiles of 128x256, 8 k steps
    ((64, 512, 2048, 512), torch.bfloat16, False),  # 32 k steps: the epilogue is a small share
    ((16, 512, 512, 512), torch.bfloat16, False),  # 128 tiles of 128x256: under 2 a SM
    ((64, 512, 512, 512), torch.float32, False),
    ((64, 512, 500, 512), torch.bfloat16, False),  # rows of 1000 bytes: no descriptor takes them
])
def test_a_batched_product_of_many_small_tiles_runs_persistent_and_flattened_over_descriptors(shape, dtype, persistent):
    b, m, k, n = shape
    config = _default(bmm, torch.empty(b, m, k, dtype=dtype), torch.empty(b, k, n, dtype=dtype))
    flattened = dict(pid_type="persistent_interleaved", persistent_flatten=True, indexing="tensor_descriptor")
    assert all((getattr(config, f) == v) == persistent for f, v in flattened.items())
    assert list(config.block_sizes) == [1, 128, 256 if persistent else 128, 64]


def _online_step(m_i, l_i, acc, scores, values):
    m_new = torch.maximum(m_i, scores.amax(-1))
    p = torch.exp(scores - m_new[:, None])
    alpha = torch.exp(m_i - m_new)
    return m_new, l_i * alpha + p.sum(-1), torch.addmm(acc * alpha[:, None], p.to(values.dtype), values)


def attention(q, k, v, split: bool = False):
    """Flash attention over [heads, seq, dim]: one key loop (or, `split`, the keys in two loops)."""
    heads, seq, dim = q.shape
    out = torch.empty_like(q)
    for bh, tm in tl.tile([heads, seq], block_size=[1, None]):
        head = bh.begin
        qb = q[head, tm, :]
        m_i = tl.full([tm], float("-inf"), dtype=torch.float32)
        l_i = tl.zeros([tm], dtype=torch.float32)
        acc = tl.zeros([tm, dim], dtype=torch.float32)
        for lo, hi in ((0, seq // 2), (seq // 2, seq)) if split else ((0, seq),):
            for tn in tl.tile(lo, hi):
                scores = tl.dot(qb, k[head, tn, :].T, out_dtype=torch.float32) * 0.25
                m_i, l_i, acc = _online_step(m_i, l_i, acc, scores, v[head, tn, :])
        out[head, tm, :] = (acc / l_i[:, None]).to(out.dtype)
    return out


@pytest.mark.parametrize("dtype, split, chained", [(torch.bfloat16, False, True), (torch.float16, False, True),
                                                  (torch.bfloat16, True, False), (torch.float32, False, False)])
def test_one_key_loop_of_chained_16_bit_products_walks_keys_of_64_with_4_warps_over_descriptors(dtype, split,
                                                                                                chained):
    q = torch.empty(8, 1024, 64, dtype=dtype)
    config = _default(lambda q, k, v: attention(q, k, v, split), q, q, q)
    got = (config.block_sizes[2], config.num_warps, config.num_stages, config.indexing)
    assert (got == (64, 4, 2, "tensor_descriptor")) == chained
    q, k, v = (torch.randn(2, 128, 16, dtype=dtype) for _ in range(3))
    want = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), scale=0.25).to(dtype)
    small = tfn.jit(lambda q, k, v: attention(q, k, v, split))
    torch.testing.assert_close(small(q, k, v), want, atol=2e-2, rtol=2e-2)
    assert (small.lower(q, k, v).config.indexing == "tensor_descriptor") == chained  # (the rule at this size too)
