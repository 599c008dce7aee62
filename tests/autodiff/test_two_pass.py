"""The online-softmax rewrite (`tilefn.autodiff.two_pass`): what it makes of a flash loop, that the forward it
makes computes what the original does (tfn.interpret of both), and that loops off the pattern are left alone
(so tfn.vjp refuses them at the user's line)."""
from __future__ import annotations

import itertools
import math

import attrs
import pytest
import torch

import tilefn as tfn
from attention_kernels import CASES
from tilefn import lang as tl
from tilefn.autodiff.two_pass import two_pass
from tilefn.errors import UnsupportedOp
from tilefn.interpret import run_program
from tilefn.trace import primitives as p


def _rewritten(program):
    kernel = two_pass(program.kernel, itertools.count(), {})
    return attrs.evolve(program, eqns=[kernel if e is program.kernel else e for e in program.eqns])


def _grid_eqns(program):
    (grid,) = program.kernel.params["region"].eqns
    return list(grid.params["region"].eqns)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_flash_loop_becomes_a_max_loop_and_a_loop_of_sums(case):
    program = tfn.make_ir(case.kernel)(*case.inputs(1, 12, 8))
    before = [e for e in _grid_eqns(program) if e.prim is p.loop_p]
    eqns = _grid_eqns(_rewritten(program))
    loops = [e for e in eqns if e.prim is p.loop_p]
    (stop,) = [e for e in eqns if e.prim is p.stop_gradient_p]
    assert len(before) == 1 and len(loops) == 2
    max_loop, sums = loops
    assert stop.inputs == max_loop.outputs and len(max_loop.outputs) == 1
    assert sums.outputs == before[0].outputs[1:]  # (l and acc, as the kernel's epilogue reads them)
    body = [e.prim for e in sums.params["region"].eqns]
    assert p.P["maximum"] not in body and body.count(p.P["mul"]) <= 1  # (the rescales are gone; a scale may stay)
    reads_shift = [e for e in sums.params["region"].eqns if stop.outputs[0] in e.inputs]
    assert reads_shift and all(e.prim is p.expand_dims_p for e in reads_shift)


@pytest.mark.parametrize("causal", [False, True])
def test_the_two_pass_forward_computes_what_the_online_one_does(causal):
    case = CASES[1] if causal else CASES[0]
    torch.manual_seed(0)
    args = case.inputs(2, 37, 16)
    program, tensors = case.kernel.trace_and_bind(args, {})
    want = run_program(program, tensors)
    torch.testing.assert_close(run_program(_rewritten(program), tensors), want)
    torch.testing.assert_close(want, case.reference(*args))


def _online(update):
    """A flash-style kernel whose carries are updated by `update(m, l, acc, s, v) -> (m, l, acc)`."""
    @tfn.jit
    def kernel(q, k, v):
        bh, seq, dim = q.shape
        out = torch.empty_like(q)
        for b, tm in tl.tile([bh, seq], block_size=[1, None]):
            qb = q[b.begin, tm, :]
            m = tl.full([tm], float("-inf"), dtype=q.dtype)
            l_i = tl.zeros([tm], dtype=q.dtype)
            acc = tl.zeros([tm, dim], dtype=q.dtype)
            for tn in tl.tile(seq):
                s = tl.dot(qb, k[b.begin, tn, :].T) / math.sqrt(dim)
                m, l_i, acc = update(m, l_i, acc, s, v[b.begin, tn, :])
            out[b.begin, tm, :] = acc / l_i[:, None]
        return out

    return kernel


def _flash(exp_p=torch.exp, exp_alpha=torch.exp, rescale_first=True, rescale_l=True):
    def update(m, l_i, acc, s, v):
        m_new = torch.maximum(m, s.amax(-1))
        p_ = exp_p(s - m_new[:, None])
        alpha = exp_alpha(m - m_new)
        l_new = (l_i * alpha if rescale_l else l_i) + p_.sum(-1)
        acc_new = acc * alpha[:, None] + p_ @ v if rescale_first else (acc + p_ @ v) * alpha[:, None]
        return m_new, l_new, acc_new

    return update


def test_the_pattern_with_acc_plus_a_product_is_rewritten_and_differentiated():
    kernel = _online(_flash())
    args = CASES[1].inputs(1, 11, 8)
    cotangent = torch.randn_like(args[0])
    leaves = [a.clone().requires_grad_(True) for a in args]
    want = torch.autograd.grad(torch.nn.functional.scaled_dot_product_attention(*leaves), leaves, cotangent)
    for got, w in zip(tfn.interpret(tfn.vjp(kernel))(*args, cotangent), want):
        torch.testing.assert_close(got, w)


@pytest.mark.parametrize("update, why", [
    (_flash(rescale_first=False), "rescaled after adding"),
    (_flash(rescale_l=False), "a sum not rescaled"),
    (_flash(exp_alpha=torch.exp2), "exp for the terms, exp2 for alpha"),
    (lambda m, l_i, acc, s, v: (torch.maximum(m, s.amax(-1)), l_i + torch.exp(s - m[:, None]).sum(-1),
                                acc + torch.exp(s - m[:, None]) @ v), "terms shifted by the old max"),
], ids=["rescaled_late", "not_rescaled", "mixed_bases", "old_max"])
def test_loops_off_the_pattern_are_left_and_refused_at_their_line(update, why):
    kernel = _online(update)
    args = CASES[1].inputs(1, 8, 4)
    program = tfn.make_ir(kernel)(*args)
    assert _grid_eqns(_rewritten(program)) == _grid_eqns(program), why
    with pytest.raises(UnsupportedOp, match="not an accumulator") as info:
        tfn.vjp(kernel)(*args, args[0])
    assert "test_two_pass.py" in str(info.value)


def _row_logsumexp(initial_sum):
    """Row log-sum-exp by an online max and sum over tiles of n, the sum starting at `initial_sum`."""
    @tfn.jit
    def logsumexp(x):
        rows, n = x.shape
        out = torch.empty([rows], dtype=x.dtype, device=x.device)
        for tm in tl.tile(rows):
            m = tl.full([tm], float("-inf"), dtype=x.dtype)
            l_i = tl.full([tm], initial_sum, dtype=x.dtype)
            for tn in tl.tile(n):
                m_new = torch.maximum(m, x[tm, tn].amax(-1))
                l_i = l_i * torch.exp(m - m_new) + torch.exp(x[tm, tn] - m_new[:, None]).sum(-1)
                m = m_new
            out[tm] = torch.log(l_i) + m
        return out

    return logsumexp


def test_a_nonzero_initial_sum_is_left_alone():
    program = tfn.make_ir(_row_logsumexp(1.0))(torch.randn(3, 5, dtype=torch.float64))
    assert _grid_eqns(_rewritten(program)) == _grid_eqns(program)


def test_a_max_also_used_after_the_loop_is_refused():
    """A log-sum-exp output reads the max after the loop: the max loop would need a gradient, which is no sum."""
    logsumexp = _row_logsumexp(0.0)
    x = torch.randn(3, 5, dtype=torch.float64)
    program = tfn.make_ir(logsumexp)(x)
    assert any(e.prim is p.stop_gradient_p for e in _grid_eqns(_rewritten(program)))
    torch.testing.assert_close(tfn.interpret(logsumexp)(x), torch.logsumexp(x, 1))
    with pytest.raises(UnsupportedOp, match="not an accumulator") as info:
        tfn.vjp(logsumexp)(x, torch.ones(3, dtype=torch.float64))
    assert "m_new = torch.maximum" in str(info.value)
