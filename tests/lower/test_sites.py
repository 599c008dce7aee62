"""Knob sites: stable ids from the trace, Helion's numbering per Config list, and lowering and the
tuner reading the same positions whatever the Config's looped reductions do to the program."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.lower.passes import canonical, rewrite
from tilefn.lower.sites import sites_of
from tilefn.trace.ir import walk_eqns
from tilefn.tune.spec import ConfigSpec

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def normalize_then_shift(x, y):
    """A whole-row reduction (looped when reduction_loops is set) between loads of two inputs."""
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        row = x[tm, :]
        total = row.sum(dim=1, keepdim=True)
        out[tm, :] = row / total + y[tm, :]
    return out


def grid_and_inner(x):
    out = torch.empty([x.shape[0], x.shape[1]], dtype=x.dtype)
    for tm, tn in tl.tile([x.shape[0], x.shape[1]]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(4):
            acc = acc + x[tm, tn] * 2
        out[tm, tn] = acc
    return out


def sites(fn, *args):
    return sites_of(canonical(tfn.make_ir(fn)(*args)))


def test_each_field_numbers_its_sites_in_program_order():
    s = sites(normalize_then_shift, torch.randn(4, 64), torch.randn(4, 64))
    assert [(site.kind, site.positions["indexing"]) for site in s.of_field("indexing")] == [
        ("load", 0), ("load", 1), ("store", 2)]
    assert [site.positions["load_eviction_policies"] for site in s.of_field("load_eviction_policies")] == [0, 1]
    (reduction,) = s.of_field("reduction_loops")
    assert reduction.facts["extent"] == 64 and reduction.id.startswith("reduce_sum_")
    s = sites(grid_and_inner, torch.randn(8, 8))
    assert [site.kind for site in s.of_field("l2_groupings")] == ["grid_loop"]
    assert [(site.kind, site.facts["static"]) for site in s.of_field("range_num_stages")] == [("inner_loop", True)]


def test_site_ids_are_stable_through_rewrites_and_copies_keep_their_original():
    x, y = torch.randn(4, 64), torch.randn(4, 64)
    program = tfn.make_ir(normalize_then_shift)(x, y)
    s = sites_of(canonical(program))
    looped = rewrite(program, tfn.Config(block_sizes=[2], reduction_loops=[16]))
    loads = [e for e in walk_eqns(looped.eqns) if e.prim.name == "load"]
    assert len(loads) > 2  # the row of x is re-read in the reduction's and the store's chunk loops
    assert {s.of(e).positions["indexing"] for e in loads} == {0, 1}
    assert all(s.of(e) is not None for e in walk_eqns(looped.eqns) if e.prim.name in ("load", "store"))


@pytest.mark.parametrize("reduction_loops", [[], [16]])
def test_an_indexing_position_names_the_same_access_whatever_the_reduction_loops(reduction_loops):
    """The bug the sites fix: chunk loops duplicate loads, which used to shift every later position."""
    x, y = torch.rand(4, 64) + 0.5, torch.randn(4, 64)  # row sums far from 0: the quotient is well conditioned
    config = tfn.Config(block_sizes=[2], reduction_loops=reduction_loops,
                        indexing=["pointer", "block_ptr", "pointer"])
    lowered = tfn.jit(normalize_then_shift).lower(x, y, config=config)
    source = lowered.kernel.kernel
    block_ptrs = [line for line in source.splitlines() if "tl.make_block_ptr(" in line]
    assert block_ptrs and all("tl.make_block_ptr(y," in line for line in block_ptrs), source
    got = tfn.jit(normalize_then_shift, config=config)(x, y)
    torch.testing.assert_close(got, x / x.sum(1, keepdim=True) + y)


def test_the_tuners_knobs_are_the_sites_positions():
    x, y = torch.randn(4, 512), torch.randn(4, 512)  # rows long enough to offer chunks
    program = tfn.make_ir(normalize_then_shift)(x, y)
    spec = ConfigSpec.of(program)
    s = sites_of(canonical(program))
    indexing = sorted(k.index for k in spec.knobs if k.field == "indexing")
    assert indexing == [site.positions["indexing"] for site in s.of_field("indexing")]
    assert [k.index for k in spec.knobs if k.field == "reduction_loops"] == [0]


def test_value_reads_a_string_for_every_access_and_unset_short_lists():
    x, y = torch.randn(4, 64), torch.randn(4, 64)
    program = canonical(tfn.make_ir(normalize_then_shift)(x, y))
    s = sites_of(program)
    store = next(e for e in walk_eqns(program.eqns) if e.prim.name == "store")
    assert s.value(tfn.Config(indexing="block_ptr"), "indexing", store) == "block_ptr"
    assert s.value(tfn.Config(indexing=["pointer"]), "indexing", store) is None
    assert s.value(tfn.Config(load_eviction_policies=["evict_last"] * 2), "load_eviction_policies", store) is None
