"""tilefn.testing: the hypothesis strategies and assert_matches (compiled vs interpret vs eager)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
import kernels
from kernels import softmax

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
FEW = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
add = tfn.jit(kernels.add)


def row_sum_int(x):
    out = torch.empty([x.shape[0]], dtype=torch.int64, device=x.device)
    for tm in tl.tile(x.shape[0]):
        out[tm] = x[tm, :].sum(dim=1)
    return out


def by_block(x):
    """Depends on the block size: right only when one tile covers the 8 elements."""
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] + (t.end - t.begin)
    return out


def scale_in_place(x):
    for t in tl.tile(x.shape):
        x[t] = x[t] * 2


# --- assert_matches --------------------------------------------------------------------------
def test_matches_under_the_default_given_configs_and_random_ones():
    x, y = torch.randn(7, 33), torch.randn(7, 33)
    tt.assert_matches(add, torch.add, x, y)
    tt.assert_matches(add, torch.add, x, y, configs=[tfn.Config(block_sizes=[2, 16]), tfn.Config(block_sizes=[8, 1])])
    tt.assert_matches(add, torch.add, x, y, configs=tfn.Config(block_sizes=[4, 4]))
    tt.assert_matches(add, torch.add, x, y, configs=3)  # the default and 3 drawn from the spec
    tt.assert_matches(softmax, lambda x: torch.softmax(x, 1), torch.randn(5, 200), configs=2)


def test_the_arguments_are_left_alone():
    x, y = torch.randn(4, 5), torch.randn(4, 5)
    before = x.clone(), y.clone()
    tt.assert_matches(add, torch.add, x, y)
    tt.assert_matches(scale_in_place, lambda x: x.mul_(2), x)
    assert torch.equal(x, before[0]) and torch.equal(y, before[1])


def test_a_wrong_reference_is_reported_with_the_config():
    x, y = torch.randn(4, 5), torch.randn(4, 5)
    config = tfn.Config(block_sizes=[2, 4])
    with pytest.raises(AssertionError, match=r"(?s)add under tfn\.Config\(block_sizes=\[2, 4\].*"
                                             r"compiled vs reference.*interpret vs reference"):
        tt.assert_matches(add, torch.sub, x, y, configs=[config])


def test_a_config_dependent_kernel_fails_under_the_config_that_breaks_it():
    x = torch.zeros(8)
    tt.assert_matches(by_block, lambda x: x + 8, x, configs=[tfn.Config(block_sizes=[8])])
    with pytest.raises(AssertionError, match=r"block_sizes=\[2\]"):
        tt.assert_matches(by_block, lambda x: x + 8, x,
                          configs=[tfn.Config(block_sizes=[8]), tfn.Config(block_sizes=[2])])


def test_an_interpreter_disagreement_is_reported(monkeypatch):
    def broken_interpret(fn, config=None):
        return lambda *args: torch.add(*args) + 1

    monkeypatch.setattr(tt, "interpret", broken_interpret)
    x, y = torch.randn(4, 5), torch.randn(4, 5)
    with pytest.raises(AssertionError, match="(?s)interpret vs reference.*compiled vs interpret") as info:
        tt.assert_matches(add, torch.add, x, y)
    assert "compiled vs reference" not in str(info.value)
    tt.assert_matches(add, torch.add, x, y, check_interpret=False)


def test_a_lowering_bug_is_told_apart(monkeypatch):
    """Only the compiled kernel disagrees: the message says the interpreter agrees with the reference."""
    from tilefn.lower.lowered import Lowered

    compile_ = Lowered.compile
    monkeypatch.setattr(Lowered, "compile", lambda self: (lambda *a: compile_(self)(*a) * 2))
    x, y = torch.randn(4, 5), torch.randn(4, 5)
    with pytest.raises(AssertionError, match="the compiled kernel is at fault"):
        tt.assert_matches(add, torch.add, x, y)


def test_a_config_that_does_not_compile_is_reported():
    x, y = torch.randn(4, 5), torch.randn(4, 5)
    with pytest.raises(AssertionError, match=r"compiling or running add under tfn\.Config\(block_sizes=\[3, 4\]\)"):
        tt.assert_matches(add, torch.add, x, y, configs=[tfn.Config(block_sizes=[3, 4])])


def test_in_place_kernels_are_checked_on_their_arguments():
    x = torch.randn(6, 9)
    tt.assert_matches(scale_in_place, lambda x: x.mul_(2), x, configs=2)
    with pytest.raises(AssertionError, match="arguments after the call"):
        tt.assert_matches(scale_in_place, lambda x: None, x)  # a reference that forgets to write x
    with pytest.raises(AssertionError, match="outputs"):
        tt.assert_matches(scale_in_place, lambda x: x * 2, x)  # returns where the kernel writes


def test_integers_must_be_equal_and_tolerances_apply_to_floats():
    x = torch.randint(-5, 6, (5, 40), dtype=torch.int32)
    tt.assert_matches(row_sum_int, lambda x: x.sum(1), x, configs=2)
    with pytest.raises(AssertionError, match="differs in 1 elements"):
        tt.assert_matches(row_sum_int, lambda x: x.sum(1) + (torch.arange(5) == 3), x)
    a, b = torch.randn(4, 5), torch.randn(4, 5)
    with pytest.raises(AssertionError):
        tt.assert_matches(add, lambda x, y: x + y + 0.01, a, b)
    tt.assert_matches(add, lambda x, y: x + y + 0.01, a, b, atol=0.02, rtol=0)


def test_half_precision_defaults():
    x, y = torch.randn(6, 20).bfloat16(), torch.randn(6, 20).bfloat16()
    tt.assert_matches(add, lambda x, y: (x.float() + y.float()).bfloat16(), x, y, configs=2)


# --- strategies ------------------------------------------------------------------------------
def test_configs_come_from_the_spec_and_shrink_to_the_default():
    x = torch.randn(5, 260)
    spec = tt.spec_of(softmax, x)
    assert find(tt.configs(softmax, x), lambda c: True) == spec.default()
    chunked = find(tt.configs(softmax, x), lambda c: bool(c.reduction_loops))  # the knob is reachable
    assert spec.normalize(chunked) == chunked and chunked.reduction_loops[0] in (128, 256)


@FEW
@given(data=st.data())
def test_drawn_configs_are_valid(data):
    x = torch.randn(5, 260)
    spec = tt.spec_of(softmax, x)
    config = data.draw(tt.configs(softmax, x, spec=spec))
    assert spec.normalize(config) == config
    for k in spec.knobs:
        assert k.get(config) in k.choices


@FEW
@given(shape=tt.shapes(3, min_side=2, max_side=40))
def test_shapes(shape):
    assert len(shape) == 3 and all(2 <= s <= 40 for s in shape)


def test_sizes_draw_ragged_and_power_of_two_sizes():
    assert find(tt.sizes(5, 64), lambda s: s & (s - 1) == 0) in (8, 16, 32, 64)
    assert find(tt.sizes(5, 64), lambda s: s & (s - 1) != 0 and s > 40) > 40


@FEW
@given(data=st.data())
def test_tensors(data):
    shape = data.draw(tt.shapes(2, max_side=9))
    x = data.draw(tt.tensors(shape, dtype=torch.bfloat16))
    assert x.shape == shape and x.dtype == torch.bfloat16 and x.device.type == "cpu"
    i = data.draw(tt.tensors(tt.shapes(1), dtype=torch.int16, low=-4, high=4))
    assert i.dtype == torch.int16 and (i.abs() <= 4).all()
    u = data.draw(tt.tensors((3, 3), dtype=torch.uint8, low=-4, high=4))
    assert (u <= 4).all()
    b = data.draw(tt.tensors((3,), dtype=torch.bool))
    assert b.dtype == torch.bool


# --- the whole recipe, as in the module docstring ---------------------------------------------
@FEW
@given(data=st.data())
def test_property_recipe(data):
    x = data.draw(tt.tensors(tt.shapes(2, max_side=40)), label="x")
    y = data.draw(tt.tensors(x.shape), label="y")
    config = data.draw(tt.configs(add, x, y), label="config")
    tt.assert_matches(add, torch.add, x, y, configs=[config])


@pytest.mark.parametrize("arch", [80, 90])
def test_compile_for_gpu_targets_the_given_architecture_without_a_gpu(arch):
    x = torch.randn(64, 48, dtype=torch.bfloat16)  # CPU tensors: nothing launches
    config = tfn.Config(block_sizes=[4], indexing="block_ptr")
    compiled = tt.compile_for_gpu(softmax, x, config=config, arch=arch)
    assert f".target sm_{arch}" in compiled.asm["ptx"]
    assert "tl.make_block_ptr(" in tfn.jit(softmax).lower(x, config=config).source  # the kernel compiled


def test_compile_for_gpu_reports_what_the_compiler_rejects():
    x = torch.randn(2 ** 21)
    # one 2M-element block: the interpreter would run it, Triton's compiler caps a tensor at 1M elements
    with pytest.raises(Exception, match="numel"):
        tt.compile_for_gpu(add, x, x, config=tfn.Config(block_sizes=[2 ** 21]))


def test_compile_for_gpu_needs_a_kernel():
    with pytest.raises(ValueError, match="no tile loops"):
        tt.compile_for_gpu(lambda x: x + 1, torch.randn(4))
