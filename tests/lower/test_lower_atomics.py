"""Atomics compiled (Triton's CPU interpreter) vs tfn.interpret vs eager PyTorch, their Triton source
and sites, the atomic_indexing knob, and compilation for sm_90 with no GPU."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as hs

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ConfigError, TilefnError
from tilefn.lower.passes import canonical
from tilefn.lower.sites import sites_of
from tilefn.testing import assert_matches, compile_for_gpu
from tilefn.trace import primitives as p
from tilefn.trace.ir import walk_eqns
from tilefn.tune.spec import ConfigSpec

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def histogram(x, bins: int):
    out = torch.zeros([bins], dtype=torch.int32, device=x.device)
    for t in tl.tile(x.shape[0]):
        tl.atomic_add(out, [x[t]], 1)
    return out


@settings(max_examples=12, deadline=None)
@given(n=hs.integers(1, 300), bins=hs.integers(1, 9), seed=hs.integers(0, 2 ** 16))
def test_histogram_matches_bincount(n, bins, seed):
    x = torch.randint(0, bins, (n,), generator=torch.Generator().manual_seed(seed))
    assert_matches(histogram, lambda x, bins: torch.bincount(x, minlength=bins).to(torch.int32), x, bins, configs=2)


def scatter_max(out, idx, values):
    for t in tl.tile(idx.shape[0]):
        tl.atomic_max(out, [idx[t]], values[t])
    return out


def scatter_min(out, idx, values):
    for t in tl.tile(idx.shape[0]):
        tl.atomic_min(out, [idx[t]], values[t])
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32, torch.int64])
@pytest.mark.parametrize("kernel, reduce", [(scatter_max, "amax"), (scatter_min, "amin")])
def test_atomic_max_min_match_scatter_reduce(kernel, reduce, dtype):
    g = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 6, (200,), generator=g)
    values = (torch.randn(200, generator=g) * 50).to(dtype)
    out = (torch.randn(6, generator=g) * 10).to(dtype)
    assert_matches(kernel, lambda o, i, v: o.scatter_reduce_(0, i, v, reduce), out, idx, values, configs=2)


def bitwise(kind):
    def kernel(out, idx, values):
        for t in tl.tile(idx.shape[0]):
            getattr(tl, f"atomic_{kind}")(out, [idx[t]], values[t])
        return out
    kernel.__name__ = f"atomic_{kind}_kernel"
    return kernel


@pytest.mark.parametrize("kind, fold", [("and", torch.bitwise_and), ("or", torch.bitwise_or),
                                        ("xor", torch.bitwise_xor)])
def test_bitwise_atomics_fold_every_lane(kind, fold):
    g = torch.Generator().manual_seed(5)
    idx = torch.randint(0, 4, (90,), generator=g)
    values = torch.randint(0, 2 ** 20, (90,), generator=g, dtype=torch.int32)
    out = torch.randint(0, 2 ** 20, (4,), generator=g, dtype=torch.int32)

    def reference(o, i, v):
        for lane in range(len(i)):
            o[i[lane]] = fold(o[i[lane]], v[lane])
        return o

    assert_matches(bitwise(kind), reference, out, idx, values, configs=2)


def add_returning_old(x, y):
    prev = torch.empty_like(x)
    for tm, tn in tl.tile(x.shape):
        prev[tm, tn] = tl.atomic_add(x, [tm, tn], y[tm, tn])
    return prev


def test_old_values_of_distinct_elements_are_the_values_before():
    x, y = torch.randn(37, 20), torch.randn(37, 20)
    assert_matches(add_returning_old, lambda x, y: (x.clone(), x.add_(y))[0], x, y, configs=3)


def cas_kernel(out, expected, value):
    old = torch.empty_like(out)
    for t in tl.tile(out.shape[0]):
        old[t] = tl.atomic_cas(out, [t], expected[t], value[t], sem="acq_rel")
    return old


def xchg_kernel(out, value):
    old = torch.empty_like(out)
    for t in tl.tile(out.shape[0]):
        old[t] = tl.atomic_xchg(out, [t], value[t], sem="release", scope="cta")
    return old


def test_cas_swaps_where_expected_and_returns_the_old_values():
    g = torch.Generator().manual_seed(1)
    out = torch.randint(0, 3, (77,), generator=g, dtype=torch.int32)
    expected = torch.randint(0, 3, (77,), generator=g, dtype=torch.int32)
    value = torch.randint(10, 20, (77,), generator=g, dtype=torch.int32)

    def reference(o, e, v):
        old = o.clone()
        o.copy_(torch.where(o == e, v, o))
        return old

    assert_matches(cas_kernel, reference, out, expected, value, configs=2)


def test_xchg_writes_and_returns_the_old_values():
    out, value = torch.randn(50), torch.randn(50)
    assert_matches(xchg_kernel, lambda o, v: (o.clone(), o.copy_(v))[0], out, value, configs=2)


def column_sums(x):
    out = torch.zeros([1], dtype=x.dtype, device=x.device)
    for tm, tn in tl.tile(x.shape):
        tl.atomic_add(out, [0], x[tm, tn])  # every lane of the tile into one element
    return out


def test_a_value_larger_than_the_index_updates_one_element_per_lane():
    x = torch.randint(-50, 50, (19, 23)).to(torch.float32)
    assert_matches(column_sums, lambda x: x.sum().reshape(1), x, configs=2)


def bf16_accumulate(out, x):
    for t in tl.tile(x.shape[0]):
        tl.atomic_add(out, [t], x[t])  # a float32 value cast to the bfloat16 target
    return out


def test_half_precision_add_casts_the_value_to_the_target():
    out, x = torch.randn(40).to(torch.float16), torch.randn(40)
    assert_matches(bf16_accumulate, lambda o, x: o.add_(x.to(torch.float16)), out, x)
    bf16 = torch.randn(40).to(torch.bfloat16)
    ptx = compile_for_gpu(bf16_accumulate, bf16, x, config=tfn.Config(block_sizes=[64])).asm["ptx"]
    assert ".bf16" in ptx and "atom.global" in ptx
    expected = tfn.interpret(bf16_accumulate)(bf16.clone(), x)
    assert torch.equal(expected, bf16 + x.to(torch.bfloat16))
    with pytest.raises(TilefnError, match="CPU interpreter has no bfloat16 atomic_add"):
        tfn.jit(bf16_accumulate)(bf16.clone(), x)


def two_adds(a, b, x):
    for tm, tn in tl.tile(x.shape):
        tl.atomic_add(a, [tm, tn], x[tm, tn])
        tl.atomic_add(b, [tm, tn], x[tm, tn])
    return a


def test_atomic_sites_and_atomic_indexing_knob():
    a, b, x = torch.zeros(64, 64), torch.zeros(64, 64), torch.randn(64, 64)
    program = canonical(tfn.make_ir(two_adds)(a, b, x))
    sites = sites_of(program).of_field("atomic_indexing")
    assert [s.positions["atomic_indexing"] for s in sites] == [0, 1]
    assert all(s.facts["forms"] == ("pointer", "tensor_descriptor") for s in sites)
    config = tfn.Config(block_sizes=[32, 32], atomic_indexing=["pointer", "tensor_descriptor"])
    assert_matches(two_adds, lambda a, b, x: (a.add_(x), b.add_(x))[0], a, b, x, configs=config)
    source = tfn.jit(two_adds).lower(a, b, x, config=config).source
    assert source.count("tl.atomic_add(") == 2  # the CPU interpreter has no descriptor reductions
    with pytest.raises(ConfigError, match="atomic_indexing has 3 entries"):
        tfn.jit(two_adds).lower(a, b, x, config=tfn.Config(atomic_indexing=["pointer"] * 3))
    with pytest.raises(ConfigError, match="atomic_indexing='block_ptr'"):
        tfn.jit(two_adds).lower(a, b, x, config=tfn.Config(atomic_indexing="block_ptr"))


def test_descriptor_atomics_compile_for_sm90_and_fall_back_where_they_cannot_serve():
    a, b, x = torch.zeros(128, 64), torch.zeros(128, 64), torch.randn(128, 64)
    tma = "cp.reduce.async.bulk.tensor"
    config = tfn.Config(block_sizes=[64, 64], atomic_indexing=["pointer", "tensor_descriptor"])
    ptx = compile_for_gpu(two_adds, a, b, x, config=config).asm["ptx"]
    assert tma in ptx and ("red.global" in ptx or "atom.global" in ptx)  # one of each
    used = compile_for_gpu(add_returning_old, a, x, config=tfn.Config(block_sizes=[64, 64],
                                                                       atomic_indexing="tensor_descriptor"))
    assert tma not in used.asm["ptx"]  # the old values are read: pointers
    out = torch.zeros(100, dtype=torch.int32)
    ptx = compile_for_gpu(cas_kernel, out, out, out, config=tfn.Config(block_sizes=[64])).asm["ptx"]
    assert "atom.global.acq_rel.gpu.cas.b32" in ptx and tma not in ptx


def test_dce_keeps_unused_atomics_and_cse_merges_none():
    def twice(out, x):
        for t in tl.tile(x.shape[0]):
            tl.atomic_add(out, [t], x[t])
            tl.atomic_add(out, [t], x[t])
        return out

    out, x = torch.zeros(30), torch.randn(30)
    program = canonical(tfn.make_ir(twice)(out, x))
    assert sum(1 for e in walk_eqns(program.eqns) if e.prim is p.P["atomic_add"]) == 2
    assert_matches(twice, lambda o, x: o.add_(2 * x), out, x, configs=2)


def test_atomic_indexing_is_no_tuner_knob_on_the_cpu_interpreter_but_builds():
    out, x = torch.zeros(64, 64), torch.randn(64, 64)
    spec = ConfigSpec.of(tfn.make_ir(bf16_accumulate)(torch.zeros(64), torch.zeros(64)))
    assert not [k for k in spec.knobs if k.field == "atomic_indexing"]  # (the interpreter has no TMA reductions)
    spec = ConfigSpec.of(tfn.make_ir(two_adds)(out, out, x))
    config = spec.build({"atomic_indexing": {1: "tensor_descriptor"}})
    assert config.atomic_indexing == ("pointer", "tensor_descriptor")
    assert_matches(two_adds, lambda a, b, x: (a.add_(x), b.add_(x))[0], out, out.clone(), x, configs=config)


def scatter_add(out, idx, values):
    for t in tl.tile(idx.shape[0]):
        tl.atomic_add(out, [idx[t]], values[t])
    return out


def scatter_rows_add(out, idx, values):
    """One row of `out` per lane of the index, every column added."""
    for t in tl.tile(idx.shape[0]):
        tl.atomic_add(out, [idx[t], slice(None)], values[t, :])
    return out


def scatter_column_sums(out, idx, values):
    """The value [k, t] is larger than the index [t]: each of its k rows adds into out[idx[t]]."""
    for t in tl.tile(idx.shape[0]):
        tl.atomic_add(out, [idx[t]], values[:, t])
    return out


GUARD = 5  # rows of storage on each side of the target, which no lane may touch
MASKED_CASES = {  # kernel -> (target shape of `size` rows, values of `n` lanes, eager index_add_ of the valid lanes)
    "scalar": (scatter_add, lambda size: (size,), lambda n: (n,), lambda t, i, v: t.index_add_(0, i, v)),
    "rows": (scatter_rows_add, lambda size: (size, 3), lambda n: (n, 3), lambda t, i, v: t.index_add_(0, i, v)),
    "broadcast": (scatter_column_sums, lambda size: (size,), lambda n: (4, n),
                  lambda t, i, v: t.index_add_(0, i, v.sum(0))),
}


def _guarded(shape):
    """Storage of 7s with GUARD rows on each side of the target view it returns too."""
    storage = torch.full((shape[0] + 2 * GUARD, *shape[1:]), 7.0)
    return storage, storage[GUARD:GUARD + shape[0]]


@settings(max_examples=12, deadline=None)
@given(case=hs.sampled_from(sorted(MASKED_CASES)), n=hs.integers(1, 100), size=hs.integers(1, 12),
       block=hs.sampled_from([4, 16, 32]), seed=hs.integers(0, 2 ** 16))
def test_lanes_whose_index_is_outside_the_target_update_nothing(case, n, size, block, seed):
    """Index values outside [0, size) (below and above) are masked off: the guard rows around the target
    keep their values and the target gets eager index_add_ of the valid lanes, compiled and interpreted."""
    kernel, target_shape, values_shape, reference = MASKED_CASES[case]
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(-GUARD, size + GUARD, (n,), generator=g)
    values = torch.randn(*values_shape(n), generator=g)
    want, target = _guarded(target_shape(size))
    valid = (idx >= 0) & (idx < size)
    reference(target, idx[valid], values[..., valid] if case == "broadcast" else values[valid])
    config = tfn.Config(block_sizes=[block])
    compiled_storage, compiled_target = _guarded(target_shape(size))
    tfn.jit(kernel).lower(compiled_target, idx, values, config=config).compile()(compiled_target, idx, values)
    interpreted_storage, interpreted_target = _guarded(target_shape(size))
    tfn.interpret(kernel, config=config)(interpreted_target, idx, values)
    torch.testing.assert_close(compiled_storage, want)
    torch.testing.assert_close(interpreted_storage, want)


@pytest.mark.parametrize("case", sorted(MASKED_CASES))
def test_masked_atomics_carry_the_mask_to_triton_and_compile_for_sm90(case):
    kernel, target_shape, values_shape, _ = MASKED_CASES[case]
    args = (torch.zeros(target_shape(8)), torch.randint(0, 8, (64,)), torch.randn(*values_shape(64)))
    config = tfn.Config(block_sizes=[16])
    source = tfn.jit(kernel).lower(*args, config=config).kernel.kernel
    assert ", mask=" in source.split("tl.atomic_add(")[1].split("\n")[0]
    ptx = compile_for_gpu(kernel, *args, config=config).asm["ptx"]
    assert ".target sm_90" in ptx and "atom" in ptx
