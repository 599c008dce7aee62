"""`bound.config_spec` / `bound.env`: the view of what tuning searches, against the kernel it describes."""
from __future__ import annotations

import pytest
import torch

import tilefn.helion as helion
import tilefn.helion.language as hl
from tilefn.helion.autotuner import EnumFragment, IntegerFragment, PowerOfTwoFragment
from tilefn.helion.config_spec import fragment_of


def scaled(x: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    factor = hl.register_tunable("factor", PowerOfTwoFragment(1, 8, 2))
    for tm, tn in hl.tile(x.size()):
        out[tm, tn] = x[tm, tn] * factor
    return out


def test_default_config_is_what_an_untuned_kernel_runs():
    x = torch.randn(20, 30)
    k = helion.kernel(autotune_effort="none")(scaled)
    bound = k.bind((x,))
    default = bound.config_spec.default_config()
    assert isinstance(default, helion.Config)
    torch.testing.assert_close(bound.compile_config(default)(x), x * 2)
    torch.testing.assert_close(k(x), x * 2)
    assert k.bind((x,)).config == default


def test_block_sizes_give_each_blocks_extent_and_range():
    x = torch.randn(20, 300)
    blocks = helion.kernel(scaled).bind((x,)).config_spec.block_sizes
    assert [(b.block_id, b.size_hint) for b in blocks] == [(0, 20), (1, 300)]
    assert all(1 <= b.min_size <= b.max_size for b in blocks)
    assert helion.kernel(scaled).bind((x,)).env.block_sizes == blocks


def test_user_defined_tunables_come_back_as_fragments():
    tunables = helion.kernel(scaled).bind((torch.randn(4, 4),)).config_spec.user_defined_tunables
    assert tunables == {"factor": PowerOfTwoFragment(1, 8, 2)}


@pytest.mark.parametrize("choices, fragment", [((1, 2, 4), PowerOfTwoFragment(1, 4, 1)),
                                               ((3, 4, 5), IntegerFragment(3, 5, 3)),
                                               (("a", "b"), EnumFragment(("a", "b")))])
def test_fragment_of_choices(choices, fragment):
    assert fragment_of(choices, choices[0]) == fragment


def test_other_fields_read_as_their_knobs_and_unknown_ones_are_named():
    spec = helion.kernel(scaled).bind((torch.randn(4, 4),)).config_spec
    assert [k.field for k in spec.num_warps] == ["num_warps"]
    with pytest.raises(AttributeError, match="no 'cute_tcgen'"):
        spec.cute_tcgen


def test_unsupported_config_keys_are_helions_keys_tilefn_does_not_act_on():
    x = torch.randn(20, 30)
    spec = helion.kernel(autotune_effort="none")(scaled).bind((x,)).config_spec
    config = {"block_sizes": [8, 8], "maxnreg": 128, "num_threads": 4, "num_warps": 2, "atomic_indexing": []}
    assert spec.unsupported_config_keys(config) == ["maxnreg", "num_threads"]  # (atomic_indexing acts)
    for key in spec.unsupported_config_keys(config):
        config.pop(key)
    torch.testing.assert_close(helion.kernel(config=helion.Config(**config))(scaled)(x), x * 2)
