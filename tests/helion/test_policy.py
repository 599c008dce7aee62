"""Helion's refusals in the front end (tilefn/helion/policy.py) and `helion.exc`'s names for tilefn's errors."""
from __future__ import annotations

import pytest
import torch

import tilefn.errors as errors
import tilefn.helion as helion
import tilefn.helion.language as hl

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def test_a_kernel_without_device_loops():
    @helion.kernel(config=helion.Config(block_sizes=[]))
    def add(x, y):
        return x + y

    with pytest.raises(helion.exc.NoDeviceLoopsInKernel, match="no hl.tile / hl.grid loop"):
        add(torch.randn(4), torch.randn(4))


def test_a_device_loop_that_stores_nothing():
    @helion.kernel(config=helion.Config(block_sizes=[4]))
    def empty(x):
        out = torch.zeros_like(x)
        for tile in hl.tile(x.size(0)):
            _ = x[tile] * 2
        return out

    with pytest.raises(helion.exc.EmptyDeviceLoopAfterDCE, match="empty after dead-code elimination") as info:
        empty(torch.randn(8))
    assert "for tile in hl.tile(x.size(0)):" in str(info.value)


def copy3(x):
    out = torch.empty_like(x)
    for tb, ts, th in hl.tile(list(x.size())):
        out[tb, ts, th] = x[tb, ts, th]
    return out


def test_too_few_block_sizes():
    kernel = helion.kernel(copy3, config=helion.Config(block_sizes=[2, 4]))
    with pytest.raises(helion.exc.InvalidConfig, match="expected 3 block sizes.*got 2"):
        kernel(torch.randn(4, 8, 16))


def test_all_block_sizes_run():
    x = torch.randn(4, 8, 16)
    assert torch.equal(helion.kernel(copy3, config=helion.Config(block_sizes=[2, 4, 8]))(x), x)


def scale(x):
    out = torch.empty_like(x)
    for tm in hl.tile(x.size(0), block_size=2):
        for tn in hl.tile(x.size(1)):
            out[tm, tn] = x[tm, tn] * 2
    return out


def test_helion_block_sizes_skip_loops_with_a_fixed_block_size():
    """Helion's [8] configures the one loop without a fixed block size (tilefn's slot 1)."""
    x = torch.randn(4, 24)
    kernel = helion.kernel(scale, config=helion.Config(block_sizes=[8]))
    torch.testing.assert_close(kernel(x), x * 2)
    assert list(kernel.bind((x,)).lower().config.block_sizes) == [2, 8]
    assert list(kernel.bind((x,)).lower(helion.Config(block_sizes=[2, 4])).config.block_sizes) == [2, 4]


@pytest.mark.parametrize("helion_name,tilefn_class", [
    ("InvalidTileRange", errors.InvalidTileRange), ("FailedToUnpackTile", errors.TileUnpackError),
    ("TileOfTile", errors.TileBoundError), ("RankMismatch", errors.RankMismatch),
    ("DotBatchDimensionMismatch", errors.DotBatchMismatch), ("StatementNotSupported", errors.UnsupportedStatement),
    ("ShapeMismatch", errors.ShapeError), ("InvalidConfig", errors.ConfigError), ("BaseError", errors.TilefnError),
])
def test_helion_names_are_tilefn_classes(helion_name, tilefn_class):
    assert getattr(helion.exc, helion_name) is tilefn_class


def test_a_helion_test_style_check_catches_tilefn_errors():
    @helion.kernel(config=helion.Config(block_sizes=[]))
    def backwards(x):
        for _t in hl.tile(x.size(0), x.size(1)):
            pass
        return x

    with pytest.raises(helion.exc.InvalidTileRange, match="begin=12, end=4"):
        backwards(torch.randn(12, 4))


def test_bind_and_to_triton_code_refuse_as_calls_do():
    kernel = helion.kernel(copy3, config=helion.Config(block_sizes=[2, 4]))
    x = torch.randn(4, 8, 16)
    with pytest.raises(helion.exc.InvalidConfig, match="expected 3 block sizes"):
        kernel.bind((x,)).to_triton_code()
    assert "def " in kernel.bind((x,)).to_triton_code(helion.Config(block_sizes=[2, 4, 8]))


def _two_level(x):
    out = torch.empty_like(x)
    for tm in hl.tile(x.size(0)):
        acc = hl.zeros([tm], dtype=torch.float32)
        for tk in hl.tile(x.size(1)):
            acc = acc + x[tm, tk].sum(-1)
        for ta, tb in hl.tile([x.size(1), 4]):  # a second, 2-d inner loop (no effect on out)
            acc = acc + 0
        out[tm, :] = (acc[:, None] + x[tm, :] * 0).to(out.dtype)
    return out


def test_helion_range_slots_skip_the_grid_loop_and_extra_inner_dims():
    from tilefn.helion.policy import helion_range_slots
    from tilefn.trace.tracer import trace

    program = trace(_two_level, (torch.randn(8, 16),), {})
    assert helion_range_slots(program) == ["persistent", 0, 1, None]  # grid, inner 1-d, inner 2-d (two dims)


# a list no longer than tilefn's inner loops is read as tilefn's (so a Config tilefn printed pastes back)
@pytest.mark.parametrize("helion_list, tilefn_list", [([0, 2, 3, 0], [2, 3]), ([0, 2, 3], [2, 3]), ([0, 2], [0, 2])])
def test_a_helion_range_list_lands_on_tilefn_inner_loops(helion_list, tilefn_list):
    from tilefn.helion.policy import check_kernel

    kernel = helion.kernel(_two_level)
    x = torch.randn(8, 16)
    config = check_kernel(kernel.jitted, (x,), helion.Config(block_sizes=[4, 8, 8, 4],
                                                             range_unroll_factors=helion_list))
    assert list(config.range_unroll_factors) == tilefn_list
    bound = kernel.bind((x,))
    expected = x.sum(-1, keepdim=True).expand_as(x)
    run = bound.compile_config(helion.Config(block_sizes=[4, 8, 8, 4], range_unroll_factors=helion_list))
    torch.testing.assert_close(run(x), expected)


def test_tilefn_length_lists_pass_unchanged_and_extra_access_entries_are_dropped():
    from tilefn.helion.policy import check_kernel

    def thrice(a):
        out = torch.empty_like(a)
        for tile in hl.tile(a.size(0)):
            out[tile] = a[tile] + a[tile] + a[tile]  # three source loads, one tilefn load
        return out

    kernel = helion.kernel(thrice)
    a = torch.randn(32)
    same = helion.Config(block_sizes=[16], indexing=["pointer", "block_ptr"])
    assert check_kernel(kernel.jitted, (a,), same) == same
    config = check_kernel(kernel.jitted, (a,), helion.Config(block_sizes=[16], indexing=["pointer"] * 3 + ["block_ptr"]))
    assert list(config.indexing) == ["pointer", "pointer"]
    torch.testing.assert_close(kernel.bind((a,)).compile_config(config)(a), a * 3)


def test_config_overrides_in_helions_list_form_land_in_tilefn_slots():
    kernel = helion.kernel(_two_level, autotune_effort="none",
                           autotune_config_overrides={"range_unroll_factors": [0, 2, 3, 0]})
    x = torch.randn(8, 16)
    torch.testing.assert_close(kernel(x), x.sum(-1, keepdim=True).expand_as(x))
    assert list(kernel.tuned.known_config(x).range_unroll_factors) == [2, 3]


@pytest.mark.parametrize("pid_type, flattened", [("persistent_blocked", True), ("persistent_interleaved", True),
                                                 ("flat", False)])
def test_a_helion_range_flatten_on_the_grid_loop_flattens_the_persistent_loop(pid_type, flattened):
    from tilefn.helion.policy import check_kernel

    kernel = helion.kernel(_two_level)
    x = torch.randn(8, 16)
    helion_config = helion.Config(block_sizes=[4, 8, 8, 4], range_flattens=[True, None, None, None], pid_type=pid_type)
    config = check_kernel(kernel.jitted, (x,), helion_config)
    assert config.persistent_flatten is flattened  # (Helion ignores a grid loop's range options unless persistent)
    assert not any(config.range_flattens)
    run = kernel.bind((x,)).compile_config(helion_config)
    torch.testing.assert_close(run(x), x.sum(-1, keepdim=True).expand_as(x))
