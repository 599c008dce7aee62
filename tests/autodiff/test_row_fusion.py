"""A gather from its program's own rows (cross-entropy's label) adds its cotangent to the row's dense
cotangent inside the kernel; only lanes whose column may leave the row keep a (one-op) host step, and a
gather the IR does not prove to be in its program's rows keeps the sorting deferred scatter."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import attrs
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings, strategies as st

import tilefn as tfn
import tilefn.testing as tt
from tilefn import lang as tl
from tilefn.trace import primitives as p
from tilefn.trace.ir import walk_eqns
from vjp_kernels import cross_entropy

F64, BF16 = torch.float64, torch.bfloat16
EXAMPLES = Path(__file__).parents[2] / "examples"
SETTINGS = settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))


def host_calls(program) -> list:
    """The names of the backward's host calls after its kernel."""
    at = list(program.eqns).index(program.kernel)
    return [getattr(e.params["fn"], "__name__", "?") for e in program.eqns[at + 1:] if e.prim is p.host_p]


def kernel_prims(program) -> set:
    return {e.prim.name for e in walk_eqns(program.kernel.params["region"].eqns)}


def autograd_of(reference, args, positions, cotangent):
    leaves = [a.detach().double().clone().requires_grad_(True) if i in positions else a for i, a in enumerate(args)]
    return torch.autograd.grad(reference(*leaves), [leaves[i] for i in positions], cotangent.double())


def flat_pick(x, at):
    """The forward's gather as written: x.view(-1)[at], 0 past the tensor."""
    inside = (at >= 0) & (at < x.numel())
    return torch.where(inside, x.reshape(-1)[at.clamp(0, x.numel() - 1)], 0.0)


def cross_entropy_as_written(x, labels):
    """cross_entropy's forward for any labels (torch's raises outside [0, v))."""
    return (torch.logsumexp(x, 1) - flat_pick(x, torch.arange(x.shape[0]) * x.shape[1] + labels)).mean()


def _looped(config, chunk):
    """`config` with the backward's rows (its one reduced extent) walked in chunks of `chunk` columns."""
    return attrs.evolve(config, reduction_loops=[chunk])


@SETTINGS
@given(data=st.data())
def test_cross_entropy_gradient_equals_float64_autograd(data):
    n, v = data.draw(st.integers(1, 37), label="n"), data.draw(st.integers(2, 70), label="v")
    logits, labels = torch.randn(n, v, dtype=F64), torch.randint(0, v, (n,))
    labels[0] = v - 1
    grad = torch.tensor(data.draw(st.floats(0.5, 2.0)), dtype=F64)
    bwd = tfn.vjp(cross_entropy)
    config = data.draw(tt.configs(bwd, logits, labels, grad), label="config")
    block = data.draw(st.sampled_from([1, 2, 4, 16]), label="block")
    config = attrs.evolve(config, block_sizes=[block])
    looped = data.draw(st.booleans(), label="looped")
    want = lambda x, y, g: (autograd_of(F.cross_entropy, (x, y), (0,), g)[0], None)  # noqa: E731
    tt.assert_matches(bwd, want, logits, labels, grad, configs=[_looped(config, 16) if looped else config])


def example_cross_entropy():
    """examples/cross_entropy.py's kernel (the one benchmarks/backward.py times: float32 rows and target)."""
    spec = importlib.util.spec_from_file_location("cross_entropy_example", EXAMPLES / "cross_entropy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cross_entropy


@pytest.mark.parametrize("example", [False, True], ids=["test_kernel", "example"])
def test_cross_entropy_takes_the_fused_path(example):
    n, v = 37, 50
    logits, labels = torch.randn(n, v, dtype=BF16), torch.randint(0, v, (n,))
    kernel = example_cross_entropy() if example else cross_entropy
    program = tfn.make_ir(tfn.vjp(kernel))(logits, labels, torch.tensor(1.0, dtype=BF16))
    assert host_calls(program) == ["add_stray"]  # (no sort: lanes outside their row only)
    assert "iota" in kernel_prims(program) and "scatter_gathered" not in str(program)


@pytest.mark.parametrize("dtype", [F64, BF16])
def test_labels_outside_the_row_keep_the_forward_as_written(dtype):
    """A label of -1, v, or several rows on reads another row's element (or 0 past the tensor)."""
    n, v = 9, 12
    logits, labels = torch.randn(n, v, dtype=dtype), torch.randint(0, v, (n,))
    labels[1], labels[2], labels[3], labels[4], labels[5] = -1, v, 3 * v + 2, -4 * v, 50 * v
    grad = torch.tensor(1.5, dtype=dtype)
    want = autograd_of(cross_entropy_as_written, (logits, labels), (0,), grad)[0]
    tol = dict(atol=2e-2, rtol=2e-2) if dtype == BF16 else {}
    for run in (tfn.vjp(cross_entropy), tfn.interpret(tfn.vjp(cross_entropy))):
        torch.testing.assert_close(run(logits, labels, grad)[0].double(), want, **tol)


def row_sum(rows):
    return rows.sum(dim=1)


def row_less_pick(position, reduce=row_sum, pick_first=False):
    """A kernel: `reduce(x[tn, :])` less `flat[position(tn, v, labels[tn])]`, the pick traced before the
    row's load where `pick_first`."""
    @tfn.jit
    def row_less(x, labels):
        n, v = x.shape
        out = torch.empty([n], dtype=x.dtype, device=x.device)
        flat = x.view(-1)
        for tn in tl.tile(n):
            picked = flat[position(tn, v, labels[tn])] if pick_first else None
            total = reduce(x[tn, :])
            out[tn] = total - (picked if pick_first else flat[position(tn, v, labels[tn])])
        return out
    return row_less


def row_less_pick_ref(position, reduce=row_sum):
    def reference(x, labels):
        rows = SimpleNamespace(index=torch.arange(x.shape[0]))
        return reduce(x) - flat_pick(x, position(rows, x.shape[1], labels))
    return reference


def clamped(tn, v, labels):
    return tn.index * v + labels.clamp(0, v - 1)


def test_a_clamped_column_needs_no_host_step():
    n, v = 11, 20
    logits, labels = torch.randn(n, v, dtype=F64), torch.randint(-5, v + 5, (n,))
    grad = torch.randn(n, dtype=F64)
    lse = lambda rows: torch.logsumexp(rows, dim=1)  # noqa: E731
    bwd = tfn.vjp(row_less_pick(clamped, lse))
    program = tfn.make_ir(bwd)(logits, labels, grad)
    assert host_calls(program) == [] and "positions" not in str(program)
    ref = row_less_pick_ref(clamped, lse)
    want = lambda x, y, g: (autograd_of(ref, (x, y), (0,), g)[0], None)  # noqa: E731
    tt.assert_matches(bwd, want, logits, labels, grad, configs=2)


@tfn.jit
def two_picks(x, a, b):
    """2 * x[r, a[r]] + 3 * x[r, b[r]] beside a row sum: where a == b both add into one element."""
    n, v = x.shape
    out = torch.empty([n], dtype=x.dtype, device=x.device)
    flat = x.view(-1)
    for tn in tl.tile(n):
        total = (x[tn, :] * x[tn, :]).sum(dim=1)
        picked = flat[tn.index * v + a[tn].clamp(0, v - 1)] * 2.0 + flat[b[tn] + tn.index * v] * 3.0
        out[tn] = total + picked
    return out


def two_picks_ref(x, a, b):
    rows = torch.arange(x.shape[0]) * x.shape[1]
    return (x * x).sum(1) + flat_pick(x, rows + a.clamp(0, x.shape[1] - 1)) * 2.0 + flat_pick(x, rows + b) * 3.0


@SETTINGS
@given(data=st.data())
def test_positions_repeated_within_a_row_add(data):
    n, v = data.draw(st.integers(1, 20), label="n"), data.draw(st.integers(1, 30), label="v")
    x, a = torch.randn(n, v, dtype=F64), torch.randint(0, v, (n,))
    b = a.clone()
    b[::2] = torch.randint(0, v, (len(b[::2]),))
    grad = torch.randn(n, dtype=F64)
    bwd = tfn.vjp(two_picks)
    assert host_calls(tfn.make_ir(bwd)(x, a, b, grad)) == ["add_stray"]  # (only b may leave its row)
    config = data.draw(tt.configs(bwd, x, a, b, grad), label="config")
    want = lambda x, a, b, g: (autograd_of(two_picks_ref, (x, a, b), (0,), g)[0], None, None)  # noqa: E731
    tt.assert_matches(bwd, want, x, a, b, grad, configs=[config])


NOT_IN_ROW = {  # name -> (position, pick first, the host call left after the kernel)
    "next_row": (lambda tn, v, c: (tn.index + 1) * v + c, False, "scatter_gathered"),
    "before_row": (lambda tn, v, c: tn.index * v + c, True, "scatter_gathered"),
    "stride_not_row_length": (lambda tn, v, c: tn.index * (v - 1) + c, False, "scatter_gathered"),
    "crossed_clamp": (lambda tn, v, c: tn.index * v + c.clamp_max(1).clamp_min(v + 1), False, "add_stray"),
}


@pytest.mark.parametrize("name", sorted(NOT_IN_ROW))
def test_a_gather_not_proven_in_its_own_row_is_not_fused_there(name):
    """The first three keep the sorting deferred scatter; a clamp whose bounds cross (every column v + 1)
    is fused but not taken as in the row: its lanes stray."""
    position, first, host = NOT_IN_ROW[name]
    n, v = 13, 10
    x, labels = torch.randn(n, v, dtype=F64), torch.randint(0, v, (n,))
    grad = torch.randn(n, dtype=F64)
    bwd = tfn.vjp(row_less_pick(position, pick_first=first))
    program = tfn.make_ir(bwd)(x, labels, grad)
    assert host_calls(program) == [host] and ("iota" in kernel_prims(program)) == (host == "add_stray")
    ref = row_less_pick_ref(position)
    want = lambda x, y, g: (autograd_of(ref, (x, y), (0,), g)[0], None)  # noqa: E731
    tt.assert_matches(bwd, want, x, labels, grad, configs=2)


def test_fused_cross_entropy_with_looped_rows_equals_autograd():
    logits, labels = torch.randn(6, 50, dtype=F64), torch.tensor([0, 49, 17, 17, 3, 48])
    grad = torch.tensor(0.7, dtype=F64)
    bwd = tfn.vjp(cross_entropy)
    config = _looped(tt.spec_of(bwd, logits, labels, grad).default(), 16)
    assert "tl.range(0, 50, BLOCK_" in bwd.lower(logits, labels, grad, config=config).kernel.kernel
    want = lambda x, y, g: (autograd_of(F.cross_entropy, (x, y), (0,), g)[0], None)  # noqa: E731
    tt.assert_matches(bwd, want, logits, labels, grad, configs=[config])


@pytest.mark.parametrize("looped", [False, True])
def test_fused_cross_entropy_compiles_for_hopper_without_spills(looped):
    logits, labels = torch.randn(64, 32768, dtype=BF16), torch.randint(0, 32768, (64,))
    bwd, grad = tfn.vjp(cross_entropy), torch.tensor(1.0, dtype=BF16)
    config = tt.spec_of(bwd, logits, labels, grad).default()
    config = _looped(attrs.evolve(config, num_warps=8), 4096) if looped else config
    ptx = tt.compile_for_gpu(bwd, logits, labels, grad, config=config).asm["ptx"]
    assert ".target sm_90" in ptx and ".local" not in ptx

