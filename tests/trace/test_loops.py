"""Loop-carried values, found by comparing the calling frame's locals at loop entry and exit."""
import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import LoopCarryError, TracingError
from tilefn.testing import assert_matches, compile_for_gpu
from tilefn.trace.ir import walk_eqns

CONFIG = tfn.Config(block_sizes=[4, 8, 4])  # small tiles: every loop runs several ragged iterations


def inner_loops(program):
    return [e for e in walk_eqns(program.eqns) if e.prim.name == "loop" and not e.params["grid"]]


def carried_names(program, loop):
    """The user's names of a loop's carries, as the printer shows them."""
    n_dims = len(loop.params["dims"])
    return [program.hints.get(p) for p in loop.params["region"].params[n_dims:]]


def check(kernel, args, expected, n_carries=None, **close):
    program = tfn.make_ir(kernel)(*args)
    if n_carries is not None:
        assert [len(loop.outputs) for loop in inner_loops(program)] == n_carries, str(program)
    actual = tfn.interpret(kernel, config=CONFIG)(*args)
    torch.testing.assert_close(actual, expected, **close)
    return program


def row_sum_rebind(x):
    m, n = x.shape
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        acc = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(n):
            acc = acc + x[tm, tn].sum(dim=1)
        out[tm] = acc
    return out


def row_sum_iadd(x):
    m, n = x.shape
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        acc = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(n):
            acc += x[tm, tn].sum(dim=1)
        out[tm] = acc
    return out


def test_acc_equals_acc_plus():
    x = torch.randn(10, 19)
    program = check(row_sum_rebind, [x], x.sum(1), n_carries=[1])
    assert carried_names(program, inner_loops(program)[0])[0].startswith("acc")


def test_augmented_assignment_carries():
    x = torch.randn(10, 19)
    check(row_sum_iadd, [x], x.sum(1), n_carries=[1])


def test_iadd_on_a_value_loaded_in_the_body_is_no_carry():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            for tn in tl.tile(x.size(1)):
                v = x[tm, tn]
                v += 1
                out[tm, tn] = v
        return out

    x = torch.randn(6, 9)
    check(kernel, [x], x + 1, n_carries=[0])


def online_max(x):
    m, n = x.shape
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tm in tl.tile(m):
        mx = tl.full([tm], float("-inf"), dtype=torch.float32)
        for tn in tl.tile(n):
            m_next = torch.maximum(mx, x[tm, tn].amax(dim=1))
            mx = m_next
        out[tm] = mx
    return out


def test_rebinding_to_a_named_temporary():
    x = torch.randn(10, 19)
    check(online_max, [x], x.amax(1), n_carries=[1])


def online_softmax(x):
    """Two passes: the first carries the running max `mi` and the running sum `di`."""
    m, n = x.size()
    out = torch.empty_like(x)
    bm, bn = tl.register_block_size(m), tl.register_block_size(n)
    for tile_m in tl.tile(m, block_size=bm):
        mi = tl.full([tile_m], float("-inf"), dtype=torch.float32)
        di = tl.zeros([tile_m], dtype=torch.float32)
        for tile_n in tl.tile(n, block_size=bn):
            values = x[tile_m, tile_n]
            mi_next = torch.maximum(mi, torch.amax(values, dim=1))
            di = di * torch.exp(mi - mi_next) + torch.exp(values - mi_next[:, None]).sum(dim=1)
            mi = mi_next
        for tile_n in tl.tile(n, block_size=bn):
            values = x[tile_m, tile_n]
            out[tile_m, tile_n] = torch.exp(values - mi[:, None]) / di[:, None]
    return out


def test_two_carries_online_softmax():
    x = torch.randn(10, 37)
    program = check(online_softmax, [x], torch.softmax(x, dim=1), n_carries=[2, 0])
    names = carried_names(program, inner_loops(program)[0])
    assert [n.rstrip("_0123456789") for n in names] == ["mi", "di"]


def test_two_carries_may_end_an_iteration_as_one_value():
    def running_max_and_previous(x):  # (Helion's jagged_softmax: `block_max = block_new_max`)
        m, n = x.shape
        out = torch.empty([2, m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            best = tl.full([tm], -1.0, dtype=x.dtype)
            new_best = tl.full([tm], -2.0, dtype=x.dtype)
            for tn in tl.tile(n):
                new_best = torch.maximum(best, x[tm, tn].amax(dim=1))
                best = new_best
            out[0, tm], out[1, tm] = best, new_best
        return out

    x = torch.randn(10, 19) - 5  # (every value below both initial values: the initials win)
    check(running_max_and_previous, [x], torch.full([2, 10], -1.0), n_carries=[2])
    x = torch.randn(10, 19)
    check(running_max_and_previous, [x], x.amax(1).clamp(min=-1).expand(2, 10), n_carries=[2])


def test_three_carries():
    def stats(x):
        m, n = x.shape
        out = torch.empty([3, m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            total = tl.zeros([tm], dtype=torch.float32)
            squares = tl.zeros([tm], dtype=torch.float32)
            biggest = tl.full([tm], float("-inf"), dtype=torch.float32)
            for tn in tl.tile(n):
                v = x[tm, tn]
                total = total + v.sum(dim=1)
                squares = squares + (v * v).sum(dim=1)
                biggest = torch.maximum(biggest, v.amax(dim=1))
            out[0, tm] = total
            out[1, tm] = squares
            out[2, tm] = biggest
        return out

    x = torch.randn(10, 21)
    expected = torch.stack([x.sum(1), (x * x).sum(1), x.amax(1)])
    check(stats, [x], expected, n_carries=[3])


def test_tuple_assignment_rebinds_two_carries():
    def kernel(x):
        m, n = x.shape
        out = torch.empty([2, m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            lo = tl.full([tm], float("inf"), dtype=torch.float32)
            hi = -lo
            for tn in tl.tile(n):
                v = x[tm, tn]
                lo, hi = torch.minimum(lo, v.amin(1)), torch.maximum(hi, v.amax(1))
            out[0, tm] = lo
            out[1, tm] = hi
        return out

    x = torch.randn(10, 21)
    check(kernel, [x], torch.stack([x.amin(1), x.amax(1)]), n_carries=[2])


def test_swapping_carries():
    """`a, b = b, a + b`: `a` leaves the body as the value `b` entered with; both are carries."""
    def fib(x):
        m, n = x.shape
        out = torch.empty([m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            a = tl.zeros([tm], dtype=torch.float32)
            b = tl.full([tm], 1.0, dtype=torch.float32)
            for tn in tl.tile(n, block_size=1):
                a, b = b, a + b + x[tm, tn].sum(dim=1)
            out[tm] = a
        return out

    x = torch.randn(6, 7)
    a, b = torch.zeros(6), torch.ones(6)
    for j in range(7):
        a, b = b, a + b + x[:, j]
    check(fib, [x], a)


def test_nested_loop_carries():
    def kernel(x):
        m, n, k = x.shape
        out = torch.empty([m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            total = tl.zeros([tm], dtype=torch.float32)
            for tn in tl.tile(n):
                row = tl.zeros([tm, tn], dtype=torch.float32)
                for tk in tl.tile(k):
                    row = row + x[tm, tn, tk].sum(dim=2)
                total = total + row.sum(dim=1)
            out[tm] = total
        return out

    x = torch.randn(6, 9, 11)
    check(kernel, [x], x.sum((1, 2)), n_carries=[1, 1], rtol=1e-5, atol=1e-5)


def test_a_carry_through_two_nested_loops():
    """`total` is rebound in the innermost loop only: it is carried by both loops around it."""
    def kernel(x):
        m, n, k = x.shape
        out = torch.empty([m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            total = tl.zeros([tm], dtype=torch.float32)
            for tn in tl.tile(n):
                for tk in tl.tile(k):
                    total = total + x[tm, tn, tk].sum(dim=(1, 2))
            out[tm] = total
        return out

    x = torch.randn(6, 9, 11)
    check(kernel, [x], x.sum((1, 2)), n_carries=[1, 1], rtol=1e-5, atol=1e-5)


def test_a_carry_never_read_after_the_loop():
    def kernel(x):
        m, n = x.shape
        out = torch.empty([m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            acc = tl.zeros([tm], dtype=torch.float32)
            for tn in tl.tile(n):
                acc = acc + x[tm, tn].sum(dim=1)
            out[tm] = x[tm, 0]
        return out

    x = torch.randn(10, 19)
    check(kernel, [x], x[:, 0], n_carries=[1])


def test_a_cloned_alias_keeps_the_initial_value():
    def kernel(x):
        m, n = x.shape
        out = torch.empty([2, m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            acc = tl.full([tm], 1.0, dtype=torch.float32)
            start = acc.clone()
            for tn in tl.tile(n):
                acc = acc + x[tm, tn].sum(dim=1) * start
            out[0, tm] = acc
            out[1, tm] = start
        return out

    x = torch.randn(10, 19)
    check(kernel, [x], torch.stack([1 + x.sum(1), torch.ones(10)]), n_carries=[1])


def test_rebinding_to_a_loop_invariant_still_named_is_an_error():
    def kernel(x):
        m, n = x.shape
        out = torch.empty([m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            acc = tl.zeros([tm], dtype=torch.float32)
            base = tl.full([tm], 2.0, dtype=torch.float32)
            for tn in tl.tile(n):
                acc, _ = base, tn  # (a plain `acc = base` copies: test_a_plain_assignment_gives_a_value_of_its_own)
            out[tm] = acc
        return out

    with pytest.raises(LoopCarryError, match=r"`acc` is rebound inside the loop to the value `base` holds.*clone"):
        tfn.make_ir(kernel)(torch.randn(10, 19))


def test_loop_temporaries_may_be_reused_as_names_in_a_later_loop():
    """`v` and `tn` of the first inner loop are plain temporaries of the second: no carry."""
    def kernel(x):
        m, n = x.shape
        out = torch.empty_like(x)
        for tm in tl.tile(m):
            for tn in tl.tile(n):
                v = x[tm, tn] * 2
                out[tm, tn] = v
            for tn in tl.tile(n):
                v = out[tm, tn] + 1
                out[tm, tn] = v
        return out

    x = torch.randn(10, 19)
    check(kernel, [x], x * 2 + 1, n_carries=[0, 0])


def test_ambiguous_alias_is_a_loop_carry_error():
    def kernel(x):
        m, n = x.shape
        out = torch.empty([m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            acc = tl.zeros([tm], dtype=torch.float32)
            acc0, _ = acc, tm  # (a tuple assignment shares the value; a plain `acc0 = acc` copies it)
            for tn in tl.tile(n):
                acc = acc + x[tm, tn].sum(dim=1) + acc0
            out[tm] = acc
        return out

    with pytest.raises(LoopCarryError, match=r"`acc` and `acc0` name the same value.*ambiguous.*acc0 = acc.clone"):
        tfn.make_ir(kernel)(torch.randn(10, 19))


def chebyshev(x, w):
    """Helion's test_chebyshev_polynomials: T_n = 2x T_(n-1) - T_(n-2), weighted, over a block-size-1 loop."""
    b, c = x.shape
    out = torch.zeros((b, c), device=x.device, dtype=x.dtype)
    for tb, tc in tl.tile([b, c]):
        in_x = x[tb, tc]
        t0 = tl.full((tb, tc), 1.0, x.dtype)
        t1 = in_x  # (a value of its own: t1 is carried, in_x is not)
        acc = w[0, tc][None, :] * t0 + w[1, tc][None, :] * t1
        two_x = 2.0 * in_x
        for order in tl.tile(2, w.size(0), block_size=1):
            new_t = two_x * t1 - t0
            acc = acc + w[order, tc] * new_t  # ([order, tc] broadcasts over [tb, tc]: one lane)
            t0 = t1
            t1 = new_t
        out[tb, tc] = acc
    return out


def eager_chebyshev(x, w):
    t0, t1 = torch.ones_like(x), x
    acc = w[0] * t0 + w[1] * t1
    for n in range(2, w.size(0)):
        t0, t1 = t1, 2 * x * t1 - t0
        acc = acc + w[n] * t1
    return acc


def test_a_plain_assignment_gives_a_value_of_its_own():
    def kernel(x):  # (Helion's test_variable_assignment_phi_nodes)
        m, n = x.shape
        out = torch.empty([2, m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            acc = tl.zeros([tm], dtype=torch.float32)
            acc0 = acc
            base = tl.full([tm], 2.0, dtype=torch.float32)
            last = acc
            for tn in tl.tile(n):
                acc = acc + x[tm, tn].sum(dim=1) + acc0
                last = base
            out[0, tm], out[1, tm] = acc, last
        return out

    x = torch.randn(10, 19)
    check(kernel, [x], torch.stack([x.sum(1), torch.full([10], 2.0)]), n_carries=[2])


@pytest.mark.parametrize("n", [2, 3, 6])
def test_chebyshev_carries_and_a_one_lane_tile_broadcast(n):
    x, w = torch.randn(13, 9), torch.randn(n, 9)
    assert_matches(chebyshev, eager_chebyshev, x, w, configs=2, atol=1e-4, rtol=1e-4)
    compile_for_gpu(chebyshev, x, w)


def test_python_number_initial_value_is_a_clear_error():
    def kernel(x):
        m, n = x.shape
        out = torch.empty([m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            acc = 0.0
            for tn in tl.tile(n):
                acc = acc + x[tm, tn].sum(dim=1)
            out[tm] = acc
        return out

    with pytest.raises(LoopCarryError, match=r"`acc` .* starts as a Python number.*tl.zeros"):
        tfn.make_ir(kernel)(torch.randn(10, 19))


def test_carry_that_changes_type_is_an_error():
    def kernel(x):
        m, n = x.shape
        out = torch.empty([m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            acc = tl.zeros([tm], dtype=torch.float16)
            for tn in tl.tile(n):
                acc = acc + x[tm, tn].sum(dim=1)
            out[tm] = acc
        return out

    with pytest.raises(LoopCarryError, match=r"`acc` enters the loop as f16\[t0\] but leaves the body as f32\[t0\]"):
        tfn.make_ir(kernel)(torch.randn(10, 19))


def test_names_of_one_grid_loop_are_fresh_in_the_next():
    def kernel(x):
        out, out2 = torch.empty_like(x), torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            acc = x[tm, :] * 2
            out[tm, :] = acc
        for tm in tl.tile(x.size(0)):
            acc = x[tm, :] + 1
            out2[tm, :] = acc
        return out, out2

    x = torch.randn(10, 4)
    check(kernel, [x], (x * 2, x + 1), n_carries=[])


def test_nothing_is_carried_through_the_grid_loop():
    def kernel(x):
        out = torch.empty_like(x)
        acc = 0
        for tm in tl.tile(x.size(0)):
            acc = acc + x[tm, :]
            out[tm, :] = acc
        return out

    with pytest.raises(LoopCarryError, match="`acc` is carried through the loop but starts as a Python number"):
        tfn.make_ir(kernel)(torch.randn(10, 4))


def test_carry_through_an_inner_grid_loop():
    def kernel(x):
        out = x.new_empty([x.size(0)])
        for tm in tl.tile(x.size(0)):
            acc = tl.zeros([tm], dtype=torch.float32)
            for j in tl.grid(x.size(1)):
                acc = acc + x[tm, j] * (j + 1)
            out[tm] = acc
        return out

    x = torch.randn(5, 3)
    program = check(kernel, [x], x @ torch.tensor([1.0, 2, 3]), n_carries=[1])
    assert "for j in grid(0, 3) carry(" in str(program)


def test_value_made_in_a_loop_is_not_visible_after_it():
    def kernel(x):
        m, n = x.shape
        out = torch.empty([m], dtype=x.dtype, device=x.device)
        for tm in tl.tile(m):
            for tn in tl.tile(n):
                part = x[tm, tn].sum(dim=1)
            out[tm] = part
        return out

    with pytest.raises(TracingError, match="used after that loop ended"):
        tfn.make_ir(kernel)(torch.randn(10, 19))


def test_grid_loop_carry_in_jagged_rows():
    def kernel(values, offsets):
        rows = offsets.size(0) - 1
        out = torch.zeros([rows], dtype=values.dtype, device=values.device)
        for r in tl.grid(rows):
            total = tl.zeros([], dtype=torch.float32)
            for tv in tl.tile(offsets[r], offsets[r + 1]):
                total = total + values[tv].sum()
            out[r] = total
        return out

    values, offsets = torch.randn(30), torch.tensor([0, 4, 4, 17, 30], dtype=torch.int32)
    expected = torch.stack([values[a:b].sum() for a, b in zip(offsets[:-1], offsets[1:])])
    check(kernel, [values, offsets], expected, n_carries=[1], rtol=1e-5, atol=1e-5)
