"""A Config checked against the kernel's knob sites: each problem named by field, entry and site."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ConfigError


def scale_rows(x):
    out = torch.empty_like(x)
    for tm, tn in tl.tile([x.shape[0], x.shape[1]]):
        out[tm, tn] = x[tm, tn] * 2
    return out


def lower(**knobs):
    return tfn.jit(scale_rows).lower(torch.randn(8, 8), config=tfn.Config(block_sizes=[4, 4], **knobs))


@pytest.mark.parametrize("knobs, message", [
    ({"pid_type": "spiral"}, r"pid_type='spiral': expected one of 'flat', 'xyz'"),
    ({"indexing": "tma"}, r"indexing='tma': expected one of 'pointer', 'block_ptr', 'tensor_descriptor'"),
    ({"indexing": ["pointer", "tma"]}, r"indexing\[1\]='tma' \(store at .*test_config_check.py:\d+\): expected one of"),
    ({"indexing": ["pointer"] * 3}, r"indexing has 3 entries but scale_rows has 2 loads and stores"),
    ({"load_eviction_policies": ["first"]}, r"load_eviction_policies\[0\]='first' \(load at .*\): expected one of ''"),
    ({"load_eviction_policies": ["", ""]}, r"load_eviction_policies has 2 entries but scale_rows has 1 loads"),
    ({"loop_orders": [[1, 1]]}, r"loop_orders\[0\]=\[1, 1\] \(tile loop at .*\): expected a permutation of \[0, 1\]"),
    ({"l2_groupings": [True]}, r"l2_groupings\[0\]=True .*expected an int >= 1"),
    ({"flatten_loops": [True]}, r"flatten_loops\[0\]=True .*does not flatten loops yet"),
    ({"range_num_stages": [2]}, r"range_num_stages has 1 entries but scale_rows has 0 inner loops"),
    ({"reduction_loops": [16]}, r"reduction_loops has 1 entries but scale_rows has 0 whole-row reductions"),
])
def test_a_config_that_does_not_fit_is_a_clear_error(knobs, message):
    with pytest.raises(ConfigError, match=message):
        lower(**knobs)


def test_the_error_points_at_the_site_in_the_users_kernel():
    with pytest.raises(ConfigError) as info:
        lower(loop_orders=[[0, 0]])
    assert info.value.source.function == "scale_rows"
    assert "for tm, tn in tl.tile" in str(info.value)


def test_entries_that_fit_lower_and_run():
    x = torch.randn(8, 8)
    config = tfn.Config(block_sizes=[4, 4], indexing=["block_ptr", None], load_eviction_policies=["evict_last"],
                        loop_orders=[[1, 0]], l2_groupings=[2], flatten_loops=[False])
    torch.testing.assert_close(tfn.jit(scale_rows, config=config)(x), x * 2)
