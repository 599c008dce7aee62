"""Random numbers in tile loops (tilefn.trace.ops.random_numbers): what the trace records, how the
rewrites treat it, the errors, and the statistics of what the interpreter draws."""
import pytest
import torch
import torch.nn.functional as F

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import TilefnError, TracingError, UnsupportedOp
from tilefn.lower.passes import canonical
from tilefn.trace import primitives as p
from tilefn.trace.ir import walk_eqns
from tilefn.trace.philox import rand as eager_rand


def _prims(program):
    return [e.prim for e in walk_eqns(program.eqns)]


def test_printed_form_names_the_draws_and_their_params():
    def k(x):
        out = torch.empty(x.shape, dtype=torch.int32, device=x.device)
        for t in tl.tile(x.shape[0]):
            out[t] = tl.randint([t], 7, 2, 9)
        return out

    text = str(tfn.make_ir(k)(torch.zeros(10)))
    assert "randint[high=9, low=2] 7, " in text and "tile_index t" in text


def test_two_draws_at_different_offsets_are_never_merged_and_unused_ones_are_dropped():
    def k(x):
        a, b = torch.empty_like(x), torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            same = tl.rand([t], 1)
            a[t] = tl.rand([t], 1) + same  # the same seed and offsets: the same numbers, one draw
            b[t] = tl.rand([], 1, offsets=t.index + 1)
            tl.rand([t], 2)  # unused
        return a, b

    program = canonical(tfn.make_ir(k)(torch.zeros(8)))
    assert _prims(program).count(p.rand_p) == 2
    a, b = tfn.interpret(k)(torch.zeros(8))
    idx = torch.arange(8, dtype=torch.int32)
    assert torch.equal(a, 2 * eager_rand(torch.tensor(1), idx))
    assert torch.equal(b, eager_rand(torch.tensor(1), idx + 1))


def test_each_torch_call_site_draws_its_own_seed_before_the_kernel():
    def k(x):
        a, b = torch.empty_like(x), torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            a[t] = torch.rand_like(x[t])
            b[t] = torch.rand_like(x[t])
        return a, b

    program = canonical(tfn.make_ir(k)(torch.zeros(8)))
    kernel_at = next(i for i, e in enumerate(program.eqns) if e.prim is p.kernel_p)
    seeds = [e for e in program.eqns[:kernel_at] if e.prim is p.host_p and e.params["fn"] is torch.randint]
    assert len(seeds) == 2 and _prims(program).count(p.rand_p) == 2
    a, b = tfn.interpret(k)(torch.zeros(8))
    assert not torch.equal(a, b)


def test_inner_loop_iterations_draw_different_numbers():
    def k(x):
        out = torch.empty([x.shape[0]], dtype=torch.float32, device=x.device)
        for tm in tl.tile(x.shape[0]):
            acc = tl.zeros([tm], dtype=torch.float32)
            for tk in tl.tile(x.shape[1], block_size=4):
                acc = acc * 2 + torch.rand_like(acc)
            out[tm] = acc
        return out

    x = torch.zeros(3, 8)
    torch.manual_seed(0)
    got = tfn.interpret(k)(x)
    torch.manual_seed(0)
    seed = torch.randint(-2**63, 2**63 - 1, (1,), dtype=torch.int64)[0]
    # offsets: the inner loop's first index (0, then 4) leads, the row follows
    first, second = (eager_rand(seed, torch.arange(3, dtype=torch.int32) + begin * 3) for begin in (0, 4))
    assert torch.equal(got, (first * 2 + second))


def test_statistics_of_the_draws():
    def k(x, seed: int):
        u, n = torch.empty_like(x), torch.empty_like(x)
        i = torch.empty(x.shape, dtype=torch.int32, device=x.device)
        for t in tl.tile(x.shape[0]):
            u[t] = tl.rand([t], seed)
            n[t] = tl.randn([t], seed)
            i[t] = tl.randint([t], seed, -3, 5)
        return u, n, i

    size = 2**17
    u, n, i = tfn.interpret(k)(torch.zeros(size), 11)
    assert 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    assert abs(n.mean()) < 0.02 and abs(n.var() - 1) < 0.02
    counts = torch.bincount((i + 3).long(), minlength=8)
    assert i.min() == -3 and i.max() == 4 and counts.numel() == 8
    assert (counts - size / 8).abs().max() < 5 * (size / 8) ** 0.5  # within 5 sigma of uniform


def test_dropout_keeps_one_minus_p_and_scales_the_kept():
    def k(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = F.dropout(x[t], 0.3)
        return out

    x = torch.rand(2**16) + 1
    out = tfn.interpret(k)(x)
    kept = out != 0
    assert abs(kept.float().mean() - 0.7) < 0.01
    torch.testing.assert_close(out[kept], x[kept] / 0.7)


@pytest.mark.parametrize("p, training, expected", [(0.0, True, "x"), (0.5, False, "x"), (1.0, True, "zeros")])
def test_dropout_edges(p, training, expected):
    def k(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = torch.dropout(x[t], p, training)
        return out

    x = torch.randn(50)
    want = x if expected == "x" else torch.zeros_like(x)
    assert torch.equal(tfn.interpret(k)(x), want)


def test_half_uniforms_stay_below_one():
    def k(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = torch.rand_like(x[t])
        return out

    out = tfn.interpret(k)(torch.zeros(2**16, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and out.max() < 1 and out.min() >= 0


def _kernel_with(body):
    def k(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = body(x, t)
        return out

    return k


@pytest.mark.parametrize("body, error, match", [
    (lambda x, t: tl.rand([t], 1.5), TracingError, "seed of a random-number call must be an int"),
    (lambda x, t: tl.rand([t], x[t]), TracingError, "seed of a random-number call"),
    (lambda x, t: tl.rand([t], 2**64), TracingError, "does not fit in 64 bits"),
    (lambda x, t: tl.randint([t], 1, 5, 5).float(), TracingError, "low < high"),
    (lambda x, t: tl.randint([t], 1, 0, 2**32).float(), TracingError, r"\[-2\*\*31, 2\*\*31\]"),
    (lambda x, t: tl.rand([], 1, offsets=x[t]), TracingError, "offsets= must be an integer"),
    (lambda x, t: F.dropout(x[t], 1.5), TilefnError, "between 0 and 1"),
    (lambda x, t: F.dropout(x[t], 0.5, inplace=True), UnsupportedOp, "inplace"),
    (lambda x, t: torch.rand_like(x[t], generator=torch.Generator()), UnsupportedOp, "default generator"),
    (lambda x, t: torch.rand_like(x[t], dtype=torch.int32).float(), UnsupportedOp, "floating-point"),
])
def test_bad_random_calls_are_clear_errors_at_the_users_line(body, error, match):
    with pytest.raises(error, match=match) as info:
        tfn.make_ir(_kernel_with(body))(torch.zeros(8))
    assert "test_random_numbers.py" in str(info.value)


def test_a_runtime_loop_bound_asks_for_explicit_offsets():
    def k(x, ends):
        out = torch.empty_like(x)
        for i in tl.grid(x.shape[0]):
            for t in tl.tile(0, ends[i]):
                out[i, t] = torch.rand_like(x[i, t])
        return out

    with pytest.raises(TracingError, match="offsets="):
        tfn.make_ir(k)(torch.zeros(2, 8), torch.tensor([3, 8]))
