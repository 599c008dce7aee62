"""Looped reductions: whole-row reductions become loops over chunks; results stay the same."""
import pytest
import torch

import tilefn as tfn
from tilefn.errors import ConfigError
from tilefn import lang as tl
from tilefn.config import Config
from tilefn.interpret import run_program
from tilefn.lower.rewrites.reduction_loops import looped_reductions, reduction_extents
from tilefn.trace.ir import walk_eqns
from kernels import layer_norm, softmax


def row_stats(x):
    """Two outputs: a sum of squares per row (no row store) and the row max."""
    sq = torch.empty([x.size(0)], dtype=torch.float32, device=x.device)
    mx = torch.empty([x.size(0)], dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.size(0)):
        row = x[tm, :]
        sq[tm] = (row.float() * row.float()).sum(dim=1)
        mx[tm] = row.amax(dim=1)
    return sq, mx


def minus_column_3(x):
    """Each row less its column 3, picked by comparing `arange` with 3: the column numbers are chunked too."""
    out = torch.empty_like(x)
    for tm in tl.tile(x.size(0)):
        row = x[tm, :].float()
        columns = torch.arange(x.size(1))
        out[tm, :] = (row - torch.where(columns[None, :] == 3, row, 0.0).sum(dim=1, keepdim=True)).to(x.dtype)
    return out


def row_argmax(x):
    out = torch.empty([x.size(0)], dtype=torch.int64, device=x.device)
    for tm in tl.tile(x.size(0)):
        out[tm] = x[tm, :].argmax(dim=1)
    return out


CASES = {
    "softmax": (softmax, lambda x: (x,), lambda x: torch.softmax(x.float(), 1).to(x.dtype)),
    "layer_norm": (layer_norm, lambda x: (x, torch.randn(x.size(1), dtype=x.dtype), torch.randn(x.size(1), dtype=x.dtype)),
                   lambda x, w, b: torch.nn.functional.layer_norm(x.float(), [x.size(1)], w.float(), b.float()).to(x.dtype)),
    "row_stats": (row_stats, lambda x: (x,), lambda x: ((x.float() ** 2).sum(1), x.amax(1))),
    "minus_column_3": (minus_column_3, lambda x: (x,), lambda x: (x.float() - x.float()[:, 3:4]).to(x.dtype)),
}


def loops_in(program):
    return [e for e in walk_eqns(program.eqns) if e.prim.name == "loop" and not e.params["grid"]]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("shape,chunk", [((5, 50), 16), ((9, 64), 32), ((3, 7), 4)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_compiled_looped_reduction_matches_eager(name, shape, chunk, dtype):
    kernel, make_args, reference = CASES[name]
    args = make_args(torch.randn(*shape, dtype=dtype))
    config = Config(block_sizes=[4], reduction_loops=[chunk])
    lowered = tfn.jit(kernel).lower(*args, config=config)
    assert loops_in(lowered.program), "the row reduction became a loop"
    assert f"tl.range(0, {shape[1]}, BLOCK_" in lowered.kernel.kernel
    tol = dict(atol=2e-2, rtol=2e-2) if dtype == torch.bfloat16 else dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lowered.compile()(*args), reference(*args), **tol)
    # the rewritten program means the same under the reference interpreter
    torch.testing.assert_close(run_program(lowered.program, list(args), lowered.config), reference(*args), **tol)


def test_softmax_gets_one_online_max_and_sum_loop_and_one_for_the_store():
    program = tfn.make_ir(softmax)(torch.randn(4, 40))
    assert reduction_extents(program) == [40]
    rewritten = looped_reductions(program, Config(block_sizes=[4], reduction_loops=[16]))
    assert len(loops_in(rewritten)) == 2
    assert rewritten.blocks[-1].fixed == 16 and rewritten.blocks[-1].extent == 40
    assert not loops_in(program), "the input program is not changed"


def test_no_chunk_size_leaves_the_program_alone():
    program = tfn.make_ir(softmax)(torch.randn(4, 40))
    assert looped_reductions(program, Config(block_sizes=[4], reduction_loops=[None])) is program


def test_half_precision_sums_accumulate_in_float32():
    def row_sum(x):
        out = torch.empty([x.size(0)], dtype=x.dtype, device=x.device)
        for tm in tl.tile(x.size(0)):
            out[tm] = x[tm, :].sum(dim=1)
        return out

    program = tfn.make_ir(row_sum)(torch.randn(4, 40, dtype=torch.bfloat16))
    rewritten = looped_reductions(program, Config(block_sizes=[4], reduction_loops=[8]))
    (loop,) = loops_in(rewritten)
    assert loop.outputs[0].type.dtype == torch.float32


def test_argmax_over_the_row_is_left_whole():
    x = torch.randn(6, 20)
    program = tfn.make_ir(row_argmax)(x)
    rewritten = looped_reductions(program, Config(block_sizes=[4], reduction_loops=[8]))
    assert not loops_in(rewritten)
    torch.testing.assert_close(tfn.jit(row_argmax)(x), x.argmax(1))
    with pytest.raises(ConfigError, match=r"reduction_loops has 1 entries but row_argmax has 0 whole-row"):
        tfn.jit(row_argmax, config=Config(reduction_loops=[8]))(x)  # no site to configure: refused


def sum_plus(x, y):
    """A row's sum plus a value loaded by index arithmetic of its own (`y[2 * i]`)."""
    out = torch.empty([x.size(0)], dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.size(0)):
        out[tm] = x[tm, :].sum(dim=1) + y[tm.index * 2]
    return out


def store_then_read(x):
    """The row is stored, then its first element read back from the output: that load must stay after the store."""
    out = torch.empty_like(x)
    first = torch.empty([x.size(0)], dtype=x.dtype, device=x.device)
    for tm in tl.tile(x.size(0)):
        out[tm, :] = x[tm, :] * 2.0
        first[tm] = x[tm, :].sum(dim=1) + out[tm, 0]
    return out, first


def _before_first_loop(text: str) -> str:
    return text.partition("    for off_")[0]


def test_a_load_needing_no_loop_result_is_issued_before_the_chunk_loop():
    x, y = torch.randn(6, 50), torch.randn(12)
    lowered = tfn.jit(sum_plus).lower(x, y, config=Config(block_sizes=[4], reduction_loops=[16]))
    text = lowered.kernel.kernel
    assert "tl.load(y +" in _before_first_loop(text) and "tl.load(x +" not in _before_first_loop(text)
    expected = x.sum(1) + y[::2][:6]
    torch.testing.assert_close(lowered.compile()(x, y), expected)
    torch.testing.assert_close(run_program(lowered.program, [x, y], lowered.config), expected)


def test_a_load_stays_after_a_chunk_loop_that_stores():
    x = torch.randn(6, 50)
    lowered = tfn.jit(store_then_read).lower(x, config=Config(block_sizes=[4], reduction_loops=[16]))
    text = lowered.kernel.kernel
    assert "tl.load(out +" not in _before_first_loop(text)
    assert text.index("tl.store(out +") < text.index("tl.load(out +")
    expected = (x * 2, x.sum(1) + 2 * x[:, 0])
    torch.testing.assert_close(lowered.compile()(x), expected)
    torch.testing.assert_close(tfn.interpret(store_then_read, config=lowered.config)(x), expected)
