"""A gather through a view of a tensor the kernel also reads another way is transposed by a deferred scatter:
the kernel writes each lane's cotangent and position into slots shaped like the gather, the host adds them
into the base's gradient after it (repeats add up). Other gathers keep atomic adds."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.autodiff.deferred import add_at
from tilefn.trace import primitives as p
from tilefn.trace.ir import walk_eqns
from vjp_kernels import cross_entropy

F64, BF16 = torch.float64, torch.bfloat16
SETTINGS = settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))


def allocations(program) -> dict:
    """Each host buffer the backward allocates: its name -> (shape, dtype)."""
    return {program.hints.get(e.outputs[0]): (tuple(e.outputs[0].type.shape), e.outputs[0].type.dtype)
            for e in program.eqns if e.prim is p.host_p and e.params.get("fn") in (torch.zeros, torch.empty)}


def writes(program) -> dict:
    """The backward kernel's writes: target name -> the primitive writing it."""
    return {program.hints.get(e.inputs[0], "?"): str(e.prim) for e in walk_eqns(program.kernel.params["region"].eqns)
            if e.prim in p.WRITES}


def autograd_of(reference, args, positions, cotangent):
    leaves = [a.detach().double().clone().requires_grad_(True) if i in positions else a for i, a in enumerate(args)]
    return torch.autograd.grad(reference(*leaves), [leaves[i] for i in positions], cotangent.double())


def test_cross_entropy_plans_no_whole_tensor_float32_buffer():
    n, v = 37, 50
    logits, labels = torch.randn(n, v, dtype=BF16), torch.randint(0, v, (n,))
    program = tfn.make_ir(tfn.vjp(cross_entropy))(logits, labels, torch.tensor(1.0, dtype=BF16))
    assert allocations(program) == {"grad_logits": ((n, v), BF16), "grad_flat_logits_values": ((n,), torch.float32),
                                    "flat_logits_positions": ((n,), torch.int32)}
    assert writes(program) == {"grad_logits": "store", "grad_flat_logits_values": "store",
                               "flat_logits_positions": "store"}


def _labels(n, v, draw):
    """Labels with repeats and both ends of the row (0 and v - 1)."""
    labels = torch.tensor([draw(st.integers(0, v - 1)) for _ in range(n)])
    labels[0], labels[-1] = 0, v - 1
    labels[1:n // 2] = labels[1]
    return labels


@SETTINGS
@given(data=st.data())
def test_cross_entropy_gradient_equals_autograd(data):
    n, v = data.draw(st.integers(3, 37), label="n"), data.draw(st.integers(2, 40), label="v")
    logits, labels = torch.randn(n, v, dtype=F64), _labels(n, v, data.draw)
    grad = torch.tensor(data.draw(st.floats(0.5, 2.0)), dtype=F64)
    bwd = tfn.vjp(cross_entropy)
    config = data.draw(tt.configs(bwd, logits, labels, grad), label="config")
    want = lambda x, y, g: (autograd_of(torch.nn.functional.cross_entropy, (x, y), (0,), g)[0], None)  # noqa: E731
    tt.assert_matches(bwd, want, logits, labels, grad, configs=[config])


@tfn.jit
def row_plus_picked(x, idx):
    """Each row plus one element of x picked through `idx` (a flat position): repeats read one element."""
    m, n = x.shape
    out = torch.empty_like(x)
    flat = x.view(-1)
    for tm in tl.tile(m):
        out[tm, :] = x[tm, :] * 2.0 + flat[idx[tm]][:, None]
    return out


def row_plus_picked_ref(x, idx):
    return x * 2.0 + x.reshape(-1)[idx][:, None]


@SETTINGS
@given(data=st.data())
def test_repeated_positions_accumulate(data):
    m, n = data.draw(st.integers(1, 20), label="m"), data.draw(st.integers(1, 9), label="n")
    x = torch.randn(m, n, dtype=F64)
    idx = torch.full((m,), data.draw(st.integers(0, m * n - 1)))  # every row picks the same element
    idx[::3] = data.draw(st.integers(0, m * n - 1))
    grad = torch.randn(m, n, dtype=F64)
    bwd = tfn.vjp(row_plus_picked)
    assert writes(tfn.make_ir(bwd)(x, idx, grad)) == {"grad_x": "store", "grad_flat_values": "store",
                                                      "flat_positions": "store"}
    config = data.draw(tt.configs(bwd, x, idx, grad), label="config")
    want = lambda x, i, g: (autograd_of(row_plus_picked_ref, (x, i), (0,), g)[0], None)  # noqa: E731
    tt.assert_matches(bwd, want, x, idx, grad, configs=[config])


def test_half_precision_repeats_sum_in_float32_and_round_once():
    """600 rows add into one bfloat16 element: summed in bfloat16 that would stop growing at 256."""
    m, n = 600, 4
    x, idx, grad = torch.randn(m, n, dtype=BF16), torch.full((m,), 5), torch.ones(m, n, dtype=BF16)
    want = autograd_of(row_plus_picked_ref, (x, idx), (0,), grad)[0]
    for run in (tfn.vjp(row_plus_picked), tfn.interpret(tfn.vjp(row_plus_picked))):
        got = run(x, idx, grad)[0]
        assert want.reshape(-1)[5].item() == 2.0 + m * n
        torch.testing.assert_close(got, want.to(BF16), atol=0, rtol=0)  # (the exact sum, rounded once)


@pytest.mark.parametrize("dtype", [F64, BF16])
def test_add_at_sums_repeats(dtype):
    target = torch.randn(3, 4, dtype=dtype)
    positions, values = torch.tensor([5, 0, 5, 11, 5]), torch.randn(5, dtype=F64 if dtype == F64 else torch.float32)
    want = target.double().reshape(-1).index_add_(0, positions, values.double()).reshape(3, 4)
    add_at(target, positions, values)
    torch.testing.assert_close(target.double(), want.to(dtype).double(), atol=0, rtol=0)


@tfn.jit
def picked_in_inner_loop(x, idx):
    """Each row plus the sum of the elements it picks through `idx` [m, k], walked in an inner loop."""
    m, n = x.shape
    out = torch.empty_like(x)
    flat = x.view(-1)
    for tm in tl.tile(m):
        acc = tl.zeros([tm], dtype=x.dtype)
        for tk in tl.tile(idx.shape[1]):
            acc = acc + flat[idx[tm, tk]].sum(1)
        out[tm, :] = x[tm, :] + acc[:, None]
    return out


@SETTINGS
@given(data=st.data())
def test_a_gather_in_an_inner_loop_gets_slots_over_its_tiles_too(data):
    m, n, k = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 8)), data.draw(st.integers(1, 20))
    x, idx = torch.randn(m, n, dtype=F64), torch.randint(0, m * n, (m, k))
    grad = torch.randn(m, n, dtype=F64)
    bwd = tfn.vjp(picked_in_inner_loop)
    assert allocations(tfn.make_ir(bwd)(x, idx, grad))["grad_flat_values"] == ((m, k), F64)
    config = data.draw(tt.configs(bwd, x, idx, grad), label="config")
    ref = lambda x, i: x + x.reshape(-1)[i].sum(1)[:, None]  # noqa: E731
    want = lambda x, i, g: (autograd_of(ref, (x, i), (0,), g)[0], None)  # noqa: E731
    tt.assert_matches(bwd, want, x, idx, grad, configs=[config])


@tfn.jit
def picked_only(x, idx):
    """Gathers from a view of x that nothing else reads: no gradient buffer to defer into."""
    flat = x.view(-1)
    out = torch.empty(idx.shape, dtype=x.dtype, device=x.device)
    for t in tl.tile(idx.shape[0]):
        out[t] = flat[idx[t]] * 3.0
    return out


def test_a_gather_from_a_tensor_read_no_other_way_keeps_atomics():
    x, idx = torch.randn(4, 5, dtype=F64), torch.tensor([3, 3, 19, 0, 3])
    grad = torch.randn(5, dtype=F64)
    program = tfn.make_ir(tfn.vjp(picked_only))(x, idx, grad)
    assert writes(program) == {"grad_flat": "atomic_add"}
    want = autograd_of(lambda x, i: x.reshape(-1)[i] * 3.0, (x, idx), (0,), grad)[0]
    for run in (tfn.vjp(picked_only), tfn.interpret(tfn.vjp(picked_only))):
        torch.testing.assert_close(run(x, idx, grad)[0], want)


@pytest.mark.parametrize("kernel, shapes", [(cross_entropy, ((64, 4096), (64,))), (row_plus_picked, ((48, 40), (48,)))])
def test_deferred_scatters_compile_for_hopper(kernel, shapes):
    x = torch.randn(*shapes[0], dtype=BF16)
    idx = torch.randint(0, shapes[0][-1], shapes[1])
    grad = torch.randn((), dtype=BF16) if kernel is cross_entropy else torch.randn(*shapes[0], dtype=BF16)
    assert ".target sm_90" in tt.compile_for_gpu(tfn.vjp(kernel), x, idx, grad).asm["ptx"]
