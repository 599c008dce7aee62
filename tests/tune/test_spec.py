"""ConfigSpec: knob domains derived from the traced Program, default/random/neighbors/normalize,
and a property test: every config the spec produces computes what `tfn.interpret` computes."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import attrs
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.lower.defaults import default_config
from tilefn.trace.queries import next_power_of_2
from tilefn.tune.spec import MAX_SHARED_BYTES, MAX_TILE_ELEMENTS, STAGES, WARPS, ConfigSpec

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


from spec_corpus import (  # noqa: E402
    add, fixed_blocks, is_pow2, knob, layer_norm, looped_sum, matmul, row_argmax, softmax, spec_for, tall_tiles,
    tunable_sum)

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
from attention import attention  # noqa: E402


# --- domains ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fn, shapes", [
    (add, [(8, 32), (8, 32)]), (add, [(7, 33), (7, 33)]), (add, [(10000, 3), (10000, 3)]),
    (softmax, [(8, 300)]), (looped_sum, [(9, 50)]), (layer_norm, [(5, 260), (260,), (260,)]),
])
def test_block_sizes_are_powers_of_two_within_the_extent(fn, shapes):
    program = tfn.make_ir(fn)(*[torch.empty(s) for s in shapes])
    spec = ConfigSpec.of(program)
    for block in program.blocks:
        k = knob(spec, "block_sizes", block.id)
        assert k is not None
        assert all(is_pow2(c) for c in k.choices)
        assert list(k.choices) == sorted(k.choices) and k.choices[0] == 1
        assert k.choices[-1] == min(next_power_of_2(block.extent), 4096)  # one tile covers the extent


def test_warps_and_stages():
    spec = spec_for(add, (8, 32), (8, 32))
    assert knob(spec, "num_warps").choices == WARPS
    assert knob(spec, "num_stages").choices == (1, 2, 3)  # deeper pipelines only for dot kernels
    assert knob(spec_for(matmul, (20, 33), (33, 17)), "num_stages").choices == STAGES


@pytest.mark.parametrize("m, k, n", [(20, 33, 17), (5, 5, 5), (1000, 700, 300)])
def test_dot_blocks_are_at_least_16(m, k, n):
    spec = spec_for(matmul, (m, k), (k, n))
    for block_id, extent in enumerate((m, n, k)):
        choices = knob(spec, "block_sizes", block_id).choices
        assert all(is_pow2(c) for c in choices)
        assert choices[0] == 16, choices  # tl.dot needs 16 x 16 operands
        assert choices[-1] == max(16, min(next_power_of_2(extent), 256))


def test_reduction_loops_only_for_whole_row_reductions():
    rows = knob(spec_for(softmax, (8, 300)), "reduction_loops", 0)
    assert rows.choices == (None, 128, 256)  # None: the whole row; chunks up to half the row
    assert knob(spec_for(layer_norm, (5, 260), (260,), (260,)), "reduction_loops", 0).choices == (None, 128, 256)
    assert knob(spec_for(softmax, (8, 4096)), "reduction_loops", 0).choices[-1] == 2048
    for fn, shapes in [(add, [(8, 300), (8, 300)]),  # no reduction
                       (looped_sum, [(8, 300)]),  # reduces tiles inside a loop, not whole rows
                       (row_argmax, [(8, 300)]),  # arg-reductions can't be chunked
                       (softmax, [(8, 128)])]:  # a row too short to split into chunks of >= 128
        assert not [k for k in spec_for(fn, *shapes).knobs if k.field == "reduction_loops"], fn.__name__


def test_fixed_and_shared_blocks():
    program = tfn.make_ir(fixed_blocks)(torch.empty(9, 40))
    spec = ConfigSpec.of(program)
    fixed = [b.id for b in program.blocks if b.fixed]
    assert fixed and all(knob(spec, "block_sizes", i) is None for i in fixed)
    assert len([k for k in spec.knobs if k.field == "block_sizes"]) == len(program.blocks) - len(fixed) == 1
    for config in [spec.default(), spec.random(random.Random(3))]:
        assert all(config.block_sizes[i] == 4 for i in fixed)


# --- default / random ------------------------------------------------------------------------
CORPUS_SHAPES = [(add, [(8, 32), (8, 32)]), (add, [(7, 33), (7, 33)]), (softmax, [(8, 300)]),
                 (softmax, [(2, 131072)]), (layer_norm, [(5, 260), (260,), (260,)]),
                 (matmul, [(20, 33), (33, 17)]), (matmul, [(512, 512), (512, 512)]),
                 (looped_sum, [(9, 50)]), (fixed_blocks, [(9, 40)])]


@pytest.mark.parametrize("fn, shapes", CORPUS_SHAPES)
def test_default_is_the_heuristic_default(fn, shapes):
    args = [torch.empty(s) for s in shapes]
    program = tfn.make_ir(fn)(*args)
    spec = ConfigSpec.of(program)
    assert spec.default() == default_config(program) == spec.base
    lowered = tfn.jit(fn).lower(*args).config  # what jit runs without a config (plus chunk blocks)
    assert spec.default() == attrs.evolve(lowered, block_sizes=lowered.block_sizes[:len(program.blocks)])
    assert spec.normalize(spec.default()) == spec.default()


def test_default_of_long_rows_chunks_them_and_fits():
    """Rows of 131072 fit once reduced in chunks: normalize must count the chunks, not whole rows."""
    spec = spec_for(softmax, (2, 131072))
    default = spec.default()
    assert default.reduction_loops == (8192,)
    assert spec.fits(default) and spec.largest_value(default) <= MAX_TILE_ELEMENTS


@pytest.mark.parametrize("fn, shapes", CORPUS_SHAPES)
def test_random_configs_are_in_domain_and_fit(fn, shapes):
    spec = spec_for(fn, *shapes)
    drawn = set()
    for seed in range(20):
        config = spec.random(random.Random(seed))
        assert config == spec.random(random.Random(seed))  # reproducible from the seed
        for k in spec.knobs:
            assert k.get(config) in k.choices, (k, config)
        assert spec.fits(config) and spec.normalize(config) == config
        drawn.add(config)
    assert len(drawn) > 5  # actually random


# --- neighbors -------------------------------------------------------------------------------
def positions(spec, config):
    return [k.choices.index(k.get(config)) for k in spec.knobs]


@pytest.mark.parametrize("fn, shapes", CORPUS_SHAPES)
def test_neighbors_differ_in_one_knob_by_one_step(fn, shapes):
    spec = spec_for(fn, *shapes)
    rng = random.Random(0)
    for config in [spec.default()] + [spec.random(rng) for _ in range(5)]:
        neighbors = spec.neighbors(config)
        assert neighbors and len(set(neighbors)) == len(neighbors) and config not in neighbors
        here = positions(spec, config)
        for n in neighbors:
            steps = [abs(a - b) for a, b in zip(positions(spec, n), here)]
            assert sum(steps) == 1, (config, n)  # one knob, one step
            assert spec.normalize(n) == n and spec.fits(n)  # valid as they are
            # nothing else changes: fields no knob covers keep their values
            covered = {k.field for k in spec.knobs}
            for field in {"indexing", "pid_type", "loop_orders"} - covered:
                assert getattr(n, field) == getattr(config, field)
        # every in-domain single step that fits is offered
        expected = 0
        for i, k in enumerate(spec.knobs):
            for step in (-1, 1):
                if 0 <= here[i] + step < len(k.choices):
                    values = spec.values(config)
                    values[k.field] = k.choices[here[i] + step] if k.index is None else {
                        **values[k.field], k.index: k.choices[here[i] + step]}
                    expected += spec.fits(spec.build(values, base=config))
        assert len(neighbors) == expected


def test_neighbors_at_the_register_limit_leave_out_steps_that_need_repair():
    spec = spec_for(add, (4096, 4096), (4096, 4096))
    config = spec.normalize(tfn.Config(block_sizes=[2048, 32], num_warps=32))
    assert spec.largest_value(config) == MAX_TILE_ELEMENTS
    neighbors = spec.neighbors(config)
    assert all(n.block_sizes in ((1024, 32), (2048, 16)) or n.block_sizes == (2048, 32) for n in neighbors)
    assert tfn.Config(block_sizes=[1024, 64], num_warps=config.num_warps, num_stages=1) not in neighbors


# --- normalize -------------------------------------------------------------------------------
def test_normalize_snaps_off_domain_values():
    spec = spec_for(softmax, (8, 300))
    fixed = spec.normalize(tfn.Config(block_sizes=[3], reduction_loops=[100], num_warps=3, num_stages=9))
    assert fixed.block_sizes == (4,)  # the nearest power of two (log scale)
    assert fixed.reduction_loops == (128,)
    assert fixed.num_warps == 4 and fixed.num_stages == 3
    assert spec.normalize(tfn.Config(block_sizes=[1000], num_warps=64)).block_sizes == (8,)
    assert spec.normalize(tfn.Config(block_sizes=[1000], num_warps=64)).num_warps == 32
    mm = spec_for(matmul, (20, 33), (33, 17))
    assert mm.normalize(tfn.Config(block_sizes=[8, 4, 1])).block_sizes == (16, 16, 16)


def test_normalize_fills_unset_knobs_from_the_default_and_keeps_other_fields():
    spec = spec_for(add, (8, 32), (8, 32))
    default = spec.default()
    fixed = spec.normalize(tfn.Config(num_warps=2, pid_type="xyz", indexing="block_ptr"))
    assert fixed.block_sizes == default.block_sizes and fixed.num_stages == default.num_stages
    assert fixed.num_warps == 2 and fixed.pid_type == "xyz"  # no pid_type knob without a matrix product
    assert set(spec.values(fixed)["indexing"].values()) == {"block_ptr"}  # one string: every access


def test_normalize_shrinks_oversize_configs():
    spec = spec_for(add, (4096, 4096), (4096, 4096))
    fixed = spec.normalize(tfn.Config(block_sizes=[4096, 4096], num_warps=32))
    assert fixed.block_sizes == (256, 256)  # the largest block halves first, until 65536 elements
    assert spec.fits(fixed)
    assert spec.normalize(tfn.Config(block_sizes=[4096, 1], num_warps=32)).block_sizes == (4096, 1)  # fits


def test_normalize_keeps_elements_per_thread_in_registers():
    spec = spec_for(add, (4096, 4096), (4096, 4096))
    fixed = spec.normalize(tfn.Config(block_sizes=[4096, 4], num_warps=1))
    assert fixed.block_sizes == (2048, 4)  # 8192 elements for 32 threads: 256 each
    assert not spec.fits(tfn.Config(block_sizes=[512, 32], num_warps=1)) and spec.fits(
        tfn.Config(block_sizes=[512, 32], num_warps=2))


def test_normalize_chunks_rows_when_blocks_cannot_shrink():
    spec = spec_for(softmax, (2, 131072))
    fixed = spec.normalize(tfn.Config(block_sizes=[2], reduction_loops=[]))
    assert fixed.block_sizes == (1,) and fixed.reduction_loops and fixed.reduction_loops[0] is not None
    assert spec.fits(fixed)


def test_normalize_raises_when_irreparable():
    spec = spec_for(row_argmax, (2, 131072))  # an arg-reduction over a row of 131072: never chunked
    with pytest.raises(ValueError, match="too large for registers"):
        spec.normalize(tfn.Config(block_sizes=[1]))
    with pytest.raises(ValueError):
        spec.random(random.Random(0))
    assert spec.default() == spec.base  # still usable: it is what jit runs


# --- property: every config the spec produces computes the same as tfn.interpret --------------
def ragged_rows(draw, lo, hi):
    return draw(st.integers(1, 6)), draw(st.integers(lo, hi))


def draw_add(draw):
    m, n = ragged_rows(draw, 1, 40)
    return torch.randn(m, n), torch.randn(m, n)


def draw_softmax(draw):
    return (torch.randn(*ragged_rows(draw, 129, 300)),)  # > 128: row chunks are offered


def draw_layer_norm(draw):
    m, n = ragged_rows(draw, 129, 300)
    return torch.randn(m, n), torch.randn(n), torch.randn(n)


def draw_matmul(draw):
    m, k, n = (draw(st.integers(1, 40)) for _ in range(3))
    return torch.randn(m, k), torch.randn(k, n)


def draw_looped_sum(draw):
    return (torch.randn(*ragged_rows(draw, 1, 70)),)


def draw_tunable_sum(draw):
    return (torch.randn(*ragged_rows(draw, 1, 70)),)


PROPERTY_CASES = {
    "tunable_sum": (tunable_sum, draw_tunable_sum, lambda x: x.sum(1)),
    "add": (add, draw_add, lambda x, y: x + y),
    "softmax": (softmax, draw_softmax, lambda x: torch.softmax(x, 1)),
    "layer_norm": (layer_norm, draw_layer_norm,
                   lambda x, w, b: torch.nn.functional.layer_norm(x, [x.shape[1]], w, b, eps=1e-5)),
    "matmul": (matmul, draw_matmul, lambda x, y: x @ y),
    "looped_sum": (looped_sum, draw_looped_sum, lambda x: x.sum(1)),
}


@pytest.mark.parametrize("name", sorted(PROPERTY_CASES))
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_spec_config_matches_interpret(name, data):
    fn, draw_args, reference = PROPERTY_CASES[name]
    torch.manual_seed(data.draw(st.integers(0, 2 ** 16), label="seed"))
    args = draw_args(data.draw)
    config = data.draw(tt.configs(fn, *args), label="config")  # spec.random(seed), then neighbours
    # matmul: float32 tl.dot on the interpreter accumulates in a different order than torch
    tt.assert_matches(fn, reference, *args, configs=[config], atol=1e-3 if name == "matmul" else None)


# --- register_tunable knobs ----------------------------------------------------------------------
def test_each_registered_tunable_is_a_knob_and_the_base_holds_the_traced_values():
    spec = spec_for(tunable_sum, (6, 40))
    assert knob(spec, "tunables", "algo").choices == ("whole", "chunked")
    assert knob(spec, "tunables", "block_n").choices == (8, 16, 32)
    assert dict(spec.default().tunables) == {"algo": "whole", "block_n": 16}
    assert all(k.field != "tunables" for k in spec_for(add, (8, 32), (8, 32)).knobs)
    assert spec_for(add, (8, 32), (8, 32)).default().tunables == ()


def test_random_configs_cover_every_choice():
    spec = spec_for(tunable_sum, (6, 40))
    rng = random.Random(0)
    seen = {dict(spec.random(rng).tunables)["algo"] for _ in range(30)}, \
        {dict(spec.random(rng).tunables)["block_n"] for _ in range(30)}
    assert seen == ({"whole", "chunked"}, {8, 16, 32})


def test_neighbors_step_each_tunable_to_its_adjacent_choices():
    spec = spec_for(tunable_sum, (6, 40))
    config = spec.default()
    moved = [dict(n.tunables) for n in spec.neighbors(config) if n.tunables != config.tunables]
    assert sorted(moved, key=repr) == sorted([{"algo": "chunked", "block_n": 16}, {"algo": "whole", "block_n": 8},
                                              {"algo": "whole", "block_n": 32}], key=repr)
    for n in spec.neighbors(config):  # one knob at a time
        assert n.tunables == config.tunables or (n.block_sizes, n.num_warps, n.num_stages) == (
            config.block_sizes, config.num_warps, config.num_stages)


def test_normalize_snaps_fills_and_drops_tunables():
    spec = spec_for(tunable_sum, (6, 40))
    fixed = spec.normalize(tfn.Config(tunables={"block_n": 20, "unknown": 1}))
    assert dict(fixed.tunables) == {"algo": "whole", "block_n": 16}  # nearest (log scale), default, dropped


def test_size_checks_see_the_program_of_the_candidates_tunables():
    x = torch.empty(4096, 4096)
    spec = tt.spec_of(tall_tiles, x)  # retraces per tunable assignment
    tall = spec.normalize(spec.build({"tunables": {"rows": 4096}, "block_sizes": {1: 4096}, "num_warps": 32}))
    assert tall.block_sizes[1] == 16 and spec.largest_value(tall) == MAX_TILE_ELEMENTS
    assert spec.normalize(spec.build({"block_sizes": {1: 4096}, "num_warps": 32})).block_sizes[1] == 4096  # rows=1
    blind = ConfigSpec.of(spec.program)  # without retracing: the base program's sizes
    wide = {"tunables": {"rows": 4096}, "block_sizes": {1: 4096}, "num_warps": 32}
    assert blind.normalize(blind.build(wide)).block_sizes[1] == 4096
    rng = random.Random(0)
    for _ in range(10):
        config = spec.random(rng)
        rows = dict(config.tunables)["rows"]
        assert rows * config.block_sizes[1] <= MAX_TILE_ELEMENTS


def adds_a_loop(x):
    """The chunked algorithm tiles columns with a block symbol the whole-row program lacks."""
    m, n = x.shape
    algo = tl.register_tunable("algo", ("whole", "chunked"))
    out = torch.empty([m], dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        if algo == "whole":
            out[tm] = x[tm, :].sum(dim=1)
        else:
            acc = tl.zeros([tm], dtype=torch.float32)
            for tn in tl.tile(n):
                acc = acc + x[tm, tn].sum(dim=1)
            out[tm] = acc
    return out


def test_a_block_only_another_tunable_value_adds_takes_its_default_size():
    x = torch.randn(6, 40)
    spec = tt.spec_of(adds_a_loop, x)
    assert [k.index for k in spec.knobs if k.field == "block_sizes"] == [0]  # the base program's blocks
    chunked = spec.normalize(spec.build({"tunables": {"algo": "chunked"}}))
    assert spec.fits(chunked) and spec.largest_value(chunked) == chunked.block_sizes[0] * 64
    rng = random.Random(0)
    configs = [spec.random(rng) for _ in range(6)]
    configs += [n for c in configs[:2] for n in spec.neighbors(c)]
    assert {dict(c.tunables)["algo"] for c in configs} == {"whole", "chunked"}
    tt.assert_matches(adds_a_loop, lambda x: x.sum(1), x, configs=configs)


def matmul_tunable_k(x, y):
    m, k = x.shape
    n = y.shape[1]
    bk = tl.register_tunable("block_k", (16, 128))
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k, block_size=bk):
            acc = acc + torch.matmul(x[tm, tk], y[tk, tn])
        out[tm, tn] = acc.to(out.dtype)
    return out


def test_shared_memory_checks_use_the_tunable_block_size():
    x, y = torch.empty(512, 512), torch.empty(512, 512)
    spec = tt.spec_of(matmul_tunable_k, x, y)
    for bk in (16, 128):
        config = spec.build({"block_sizes": {0: 64, 1: 64}, "num_stages": 3, "tunables": {"block_k": bk}})
        assert spec.dot_shared_bytes(config) == 3 * (64 * bk + bk * 64) * 4
    big = spec.normalize(spec.build({"block_sizes": {0: 256, 1: 256}, "num_stages": 5, "tunables": {"block_k": 128}}))
    assert spec.dot_shared_bytes(big) <= MAX_SHARED_BYTES and dict(big.tunables)["block_k"] == 128


# --- indexing knobs --------------------------------------------------------------------------
def indexing_knobs(spec):
    return {k.index: k.choices for k in spec.knobs if k.field == "indexing"}


def test_indexing_knobs_offer_tma_only_where_some_block_sizes_allow_it():
    assert indexing_knobs(spec_for(matmul, (64, 64), (64, 64))) == {
        i: ("pointer", "block_ptr", "tensor_descriptor") for i in range(3)}  # x, y loads; the store
    # a whole row of 3000 (4096 lanes) is over TMA's 256 per dimension, whatever the block sizes
    assert indexing_knobs(spec_for(softmax, (64, 3000))) == {i: ("pointer", "block_ptr") for i in range(2)}
    # rows of 6 floats: a 24-byte stride is not a multiple of 16 bytes
    assert indexing_knobs(spec_for(add, (32, 6), (32, 6))) == {i: ("pointer", "block_ptr") for i in range(3)}


def test_indexing_positions_follow_the_lowered_accesses():
    """Two identical loads are one after CSE: the spec numbers the accesses lowering emits."""
    def twice(x):
        out = torch.empty_like(x)
        for tm, tn in tl.tile(x.shape):
            a = x[tm, tn]
            b = x[tm, tn]
            out[tm, tn] = a + b
        return out

    spec = spec_for(twice, (64, 64))
    assert sorted(indexing_knobs(spec)) == [0, 1]  # one load, one store
    config = spec.build({"indexing": {0: "pointer", 1: "tensor_descriptor"}})
    x = torch.randn(64, 64)
    assert "out_desc.store(" in tfn.jit(twice).lower(x, config=config).source


def test_the_attention_backward_s_five_products_must_fit_in_shared_memory():
    """Key tiles of 128 with 3 stages need 320 KB (the H200 refused them at launch): no fit, and normalize
    repairs it to a Config whose estimate fits."""
    args = tuple(torch.randn(1, 2, 256, 128, dtype=torch.bfloat16) for _ in range(4))
    spec = tt.spec_of(tfn.vjp(attention), *args)
    too_big = spec.build({"block_sizes": {1: 128, 2: 128}, "num_stages": 3, "num_warps": 8})
    assert spec.dot_shared_bytes(too_big) == 327680 and not spec.fits(too_big)
    repaired = spec.normalize(too_big)
    assert spec.fits(repaired) and spec.dot_shared_bytes(repaired) <= MAX_SHARED_BYTES
    assert spec.fits(spec.default()) and tuple(spec.default().block_sizes) == (1, 128, 64)


def test_the_pid_type_knob_also_chooses_a_flattened_persistent_loop():
    spec = spec_for(matmul, (200, 64), (64, 96))
    pid = knob(spec, "pid_type")
    assert pid.choices == ("flat", "persistent_interleaved", "persistent_interleaved+flatten",
                           "persistent_blocked", "persistent_blocked+flatten")
    flat = spec.build({"pid_type": "persistent_blocked+flatten"})
    assert (flat.pid_type, flat.persistent_flatten) == ("persistent_blocked", True)
    assert pid.get(flat) == "persistent_blocked+flatten"
    plain = spec.build({"pid_type": "persistent_blocked"}, base=flat)
    assert (plain.pid_type, plain.persistent_flatten) == ("persistent_blocked", False)
    assert spec.build({"pid_type": "flat"}, base=flat).persistent_flatten is False  # never flatten with "flat"
    x, y = torch.randn(200, 64), torch.randn(64, 96)
    torch.testing.assert_close(tfn.jit(matmul, config=flat)(x, y), x @ y, atol=1e-4, rtol=1e-4)
