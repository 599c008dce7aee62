"""Config.indexing: loads and stores through pointers, block pointers or tensor descriptors.

Structure (which form each access takes, and when it falls back to pointers) and numerics (on
Triton's CPU interpreter, every form equals eager PyTorch and tfn.interpret). The hypothesis
corpus in test_jit_vs_interpret.py also draws `indexing` for every kernel it checks.
"""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import TilefnError
from tilefn.testing import compile_for_gpu
from kernels import matmul

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
FORMS = ["pointer", "block_ptr", "tensor_descriptor"]


def row_softmax(x):
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = torch.softmax(x[tm, :].to(torch.float32), dim=1).to(x.dtype)
    return out


def plane_scale(x, scale):
    """Int and scalar indices: x[0, i, tn] * 2 into out[i, tn]."""
    _, rows, n = x.shape
    out = torch.empty([rows, n], dtype=x.dtype, device=x.device)
    for i in tl.grid(rows):
        for tn in tl.tile(n):
            out[i, tn] = x[0, i, tn] * 2.0
    return out


def gather_rows(table, ids):
    n, d = ids.shape[0], table.shape[1]
    out = torch.empty([n, d], dtype=table.dtype, device=table.device)
    for tn, td in tl.tile([n, d]):
        out[tn, td] = table[ids[tn], td]
    return out


def add_partial(x, y):
    """A slice short of the row (30 of 40 columns, in 32 lanes): the store must not spill past it."""
    out = torch.zeros_like(x)
    for tm in tl.tile(x.shape[0]):
        out[tm, 0:30] = x[tm, 0:30] + y[tm, 0:30]
    return out


def prefix_sums(values, counts):
    """Row r sums the first counts[r] rows of values: a tile loop whose end is a loaded int64."""
    n, d = counts.shape[0], values.shape[1]
    out = torch.empty([n, d], dtype=torch.float32, device=values.device)
    for r in tl.grid(n):
        for td in tl.tile(d):
            acc = tl.zeros([td], dtype=torch.float32)
            for tv in tl.tile(0, counts[r]):
                acc = acc + torch.sum(values[tv, td], dim=0)
            out[r, td] = acc
    return out


def doubled_head(values, counts):
    """The first counts[0] rows doubled: a scalar row index from a loop over a loaded bound."""
    out = torch.zeros_like(values)
    for td in tl.tile(values.shape[1]):
        for i in tl.grid(counts[0]):
            out[i, td] = values[i, td] * 2.0
    return out


def source(fn, *args, **config):
    return tfn.jit(fn).lower(*args, config=tfn.Config(**config)).source


@pytest.mark.parametrize("form", FORMS)
def test_matmul_under_each_form_equals_eager(form):
    x, y = torch.randn(100, 72), torch.randn(72, 40)
    config = tfn.Config(block_sizes=[32, 16, 16], indexing=form)
    got = tfn.jit(matmul, config=config)(x, y)
    torch.testing.assert_close(got, x @ y, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got, tfn.interpret(matmul, config=config)(x, y), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("form", FORMS)
def test_ragged_softmax_under_each_form_equals_eager(form):
    x = torch.randn(33, 100, dtype=torch.bfloat16)
    got = tfn.jit(row_softmax, config=tfn.Config(block_sizes=[4], indexing=form))(x)
    torch.testing.assert_close(got, torch.softmax(x.float(), dim=1).to(x.dtype), atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("form", FORMS)
def test_int_and_scalar_indices_under_each_form(form):
    x, scale = torch.randn(3, 5, 48), torch.randn(5)
    got = tfn.jit(plane_scale, config=tfn.Config(block_sizes=[16], indexing=form))(x, scale)
    torch.testing.assert_close(got, x[0] * 2.0)


@pytest.mark.parametrize("form", FORMS)
def test_a_slice_short_of_the_row_stores_only_inside_it(form):
    x, y = torch.randn(20, 40), torch.randn(20, 40)
    got = tfn.jit(add_partial, config=tfn.Config(block_sizes=[8], indexing=form))(x, y)
    want = torch.zeros_like(x)
    want[:, :30] = x[:, :30] + y[:, :30]
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("form", FORMS)
def test_offsets_from_loaded_bounds_are_int32_for_block_forms(form):
    """The interpreter accepts 64-bit block offsets; the GPU compiler does not: both are checked."""
    values, counts = torch.randn(20, 48), torch.tensor([3, 20, 0, 7])
    config = tfn.Config(block_sizes=[16, 4], indexing=form)
    want = torch.stack([values[:c].sum(0) for c in counts.tolist()])
    torch.testing.assert_close(tfn.jit(prefix_sums, config=config)(values, counts), want, atol=1e-4, rtol=1e-4)
    assert ".target sm_90" in compile_for_gpu(prefix_sums, values, counts, config=config).asm["ptx"]
    config = tfn.Config(block_sizes=[16], indexing=form)
    want = torch.zeros_like(values)
    want[:3] = values[:3] * 2.0
    torch.testing.assert_close(tfn.jit(doubled_head, config=config)(values, counts), want)
    assert ".target sm_90" in compile_for_gpu(doubled_head, values, counts, config=config).asm["ptx"]


def test_descriptors_are_made_once_at_the_top_of_the_kernel():
    text = source(matmul, torch.randn(64, 64), torch.randn(64, 64), block_sizes=[32, 32, 16],
                  indexing="tensor_descriptor")
    kernel = text.split("def _matmul_kernel")[1]
    assert kernel.count("tl.make_tensor_descriptor(") == 3
    assert kernel.index("make_tensor_descriptor") < kernel.index("tl.program_id")
    assert "x_desc.load([off_tm, off_tk])" in kernel and "out_desc.store([off_tm, off_tn]" in kernel


def test_block_pointers_check_only_ragged_dimensions():
    text = source(matmul, torch.randn(64, 60), torch.randn(60, 64), block_sizes=[32, 32, 16], indexing="block_ptr")
    assert "tl.make_block_ptr(x, shape=[64, 60]" in text
    # k = 60 is ragged, m is not: the peeled k loop's whole blocks load unchecked, its last block checks k
    assert "v = tl.load(x_block)" in text and "v_1 = tl.load(y_block)" in text
    assert 'tl.load(x_block_1, boundary_check=(1,), padding_option="zero")' in text
    assert 'tl.load(y_block_1, boundary_check=(0,), padding_option="zero")' in text
    assert "tl.store(out_block, acc_1)" in text  # 64 x 64 in 32 x 32 blocks: no check


def test_per_access_list_picks_each_form_in_program_order():
    x, y = torch.randn(64, 64), torch.randn(64, 64)
    text = source(matmul, x, y, block_sizes=[32, 32, 16], indexing=["block_ptr", "pointer", "tensor_descriptor"])
    assert "tl.make_block_ptr(x," in text  # load of x
    assert "tl.load(y + " in text  # load of y: pointers
    assert "out_desc.store(" in text  # the store


def test_a_gather_stays_on_pointers():
    table, ids = torch.randn(10, 32), torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    config = tfn.Config(block_sizes=[8, 16], indexing="tensor_descriptor")
    text = tfn.jit(gather_rows).lower(table, ids, config=config).source
    assert "table_desc" not in text and "make_block_ptr(table" not in text
    torch.testing.assert_close(tfn.jit(gather_rows, config=config)(table, ids), table[ids])


def test_descriptor_needs_a_contiguous_last_dimension():
    x = torch.randn(72, 100).t()  # strides (1, 100)
    y = torch.randn(72, 40)
    config = tfn.Config(block_sizes=[32, 16, 16], indexing="tensor_descriptor")
    text = tfn.jit(matmul).lower(x, y, config=config).source
    assert "x_desc" not in text and "y_desc" in text
    torch.testing.assert_close(tfn.jit(matmul, config=config)(x, y), x @ y, atol=1e-4, rtol=1e-4)


def test_descriptor_needs_16_byte_rows_and_strides():
    x = torch.randn(16, 6)  # a 6-float row stride is 24 bytes
    text = source(row_softmax, x, block_sizes=[4], indexing="tensor_descriptor")
    assert "make_tensor_descriptor" not in text


def test_an_unknown_indexing_is_a_clear_error():
    with pytest.raises(TilefnError, match="indexing"):
        source(row_softmax, torch.randn(8, 16), block_sizes=[4], indexing="tma")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("form", FORMS)
def test_each_form_compiles_and_runs_on_the_gpu(form):
    if form == "tensor_descriptor" and torch.cuda.get_device_capability()[0] < 9:
        pytest.skip("tensor descriptors need Hopper or newer")
    x, y = (torch.randn(256, 192, device="cuda", dtype=torch.bfloat16),
            torch.randn(192, 136, device="cuda", dtype=torch.bfloat16))
    got = tfn.jit(matmul, config=tfn.Config(block_sizes=[64, 64, 64], indexing=form))(x, y)
    torch.testing.assert_close(got, (x.float() @ y.float()).to(x.dtype), atol=0.5, rtol=2e-2)
    z = torch.randn(1000, 500, device="cuda", dtype=torch.bfloat16)
    got = tfn.jit(row_softmax, config=tfn.Config(block_sizes=[2], indexing=form))(z)
    torch.testing.assert_close(got, torch.softmax(z.float(), dim=1).to(z.dtype), atol=1e-2, rtol=1e-2)


def col_sum(x):
    out = torch.empty([x.shape[1]], dtype=x.dtype)
    for tn in tl.tile(x.shape[1]):
        acc = tl.zeros([tn], dtype=torch.float32)
        for tm in tl.tile(x.shape[0]):
            acc = acc + x[tm, tn].sum(0)
        out[tn] = acc
    return out


def add2d(x, y):
    out = torch.empty([y.shape[0], y.shape[1]], dtype=y.dtype)
    for tm, tn in tl.tile([y.shape[0], y.shape[1]]):
        out[tm, tn] = x[tm, tn] + y[tm, tn]
    return out


@pytest.mark.parametrize("shape", [(64, 4), (100, 3), (128, 16), (7, 1)])
@pytest.mark.parametrize("form", ["pointer", "block_ptr"])
def test_an_expanded_input_loads_a_full_tile_on_its_stride_0_axes(shape, form):
    """A stride-0 axis adds no pointer term; the pointer must still span it (a [1, N] tile summed
    over rows was a silent wrong answer)."""
    x = torch.randn(shape[1]).expand(*shape)
    config = tfn.Config(block_sizes=[4, 16], indexing=form)
    torch.testing.assert_close(tfn.jit(col_sum, config=config)(x), x.sum(0), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(tfn.interpret(col_sum)(x), x.sum(0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (64, 64), (100, 3)])
def test_a_fully_stride_0_input_works_at_every_shape(shape):
    x, y = torch.tensor(2.0).expand(*shape), torch.randn(*shape)
    torch.testing.assert_close(tfn.jit(add2d)(x, y), x + y)
    torch.testing.assert_close(tfn.jit(add2d)(y, x), x + y)
