"""Block sizes read as ints by host code: traced with the Config's value (an allocation of one row per
block, Python ranges stepping by a block), so compiled, tfn.interpret and eager torch agree under
drawn Configs, and a Program is only lowered with the value it was traced for."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as hs

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.errors import ConfigError
from tilefn.helion import cdiv
from tilefn.lower.lowered import lower
from tilefn.testing import assert_matches, compile_for_gpu

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def block_partials(x):
    """Helion's layer_norm backward shape: one partial row per block of rows, summed on the host."""
    m, n = x.shape
    bm = tl.register_block_size(m)
    partial = torch.empty([cdiv(m, bm), n], dtype=torch.float32, device=x.device)
    for tb in tl.tile(m, block_size=bm):
        partial[tb.id, :] = x[tb, :].sum(0)
    return partial.sum(0)


def stepped_columns(x):
    """A Python range stepping by a block size: one top-level loop per step, scaled by its number."""
    m, n = x.shape
    bn = tl.register_block_size(n)
    out = torch.empty_like(x)
    for start in range(0, n, bn):
        width = int(min(bn, n - start))  # host code: an int (min may return the BlockSize itself)
        for tm in tl.tile(m):
            cols = start + torch.arange(width)
            out[tm, cols] = x[tm, cols] * (start // bn + 1)
    return out


def _stepped(x, bn):
    return x * (torch.arange(x.size(1)) // bn + 1)


@settings(max_examples=6, deadline=None)
@given(data=hs.data(), m=hs.integers(1, 70), n=hs.integers(1, 9))
def test_an_allocation_sized_by_a_block_count(data, m, n):
    x = torch.randn(m, n)
    assert_matches(block_partials, lambda x: x.sum(0), x, configs=[data.draw(tt.configs(block_partials, x))])


@settings(max_examples=6, deadline=None)
@given(m=hs.integers(1, 6), n=hs.integers(1, 40), bn=hs.sampled_from([1, 4, 8, 16]))
def test_a_python_range_stepping_by_a_block_size(m, n, bn):
    x = torch.randn(m, n)
    config = tfn.Config(block_sizes=[bn, 8])
    assert_matches(stepped_columns, lambda x: _stepped(x, bn), x, configs=config)


def test_one_program_per_value_host_code_reads():
    x = torch.randn(40, 3)
    kernel = tfn.jit(block_partials)
    programs = {bm: kernel.trace_and_bind((x,), {}, (), [bm])[0] for bm in (8, 16)}
    assert [p.blocks[0].host for p in programs.values()] == [8, 16]
    assert [p.eqns[0].outputs[0].type.shape for p in programs.values()] == [(5, 3), (3, 3)]
    assert kernel.trace_and_bind((x,), {}, (), [8])[0] is programs[8]  # cached per value
    default = tfn.make_ir(block_partials)(x)
    assert default.blocks[0].host == 64 and "host code computed with 64" in str(default)
    with pytest.raises(ConfigError, match="traced with 8"):
        lower(programs[8], tfn.Config(block_sizes=[16]))


def test_host_read_block_sizes_compile_for_hopper():
    x = torch.randn(300, 16)
    compile_for_gpu(block_partials, x, config=tfn.Config(block_sizes=[32]))
    compile_for_gpu(stepped_columns, x, config=tfn.Config(block_sizes=[8, 16]))
