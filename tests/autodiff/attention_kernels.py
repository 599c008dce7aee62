"""Flash-attention forwards (online softmax over key tiles) that the autodiff tests differentiate, each in
another form of the pattern, with the eager definition their gradients are checked against. Accumulators
are float64 for float64 inputs (so gradients meet torch autograd's at float64 tolerances), else float32."""
from __future__ import annotations

import math

import attrs
import torch
import torch.nn.functional as F

import tilefn as tfn
from tilefn import lang as tl

LOG2E = 1.4426950408889634


def _acc_dtype(x):
    return torch.float64 if x.dtype == torch.float64 else torch.float32


@tfn.jit
def attention(q, k, v):
    """[batch, heads, seq, dim] through host views; exp."""
    batch, heads, seq, dim = q.shape
    q3, k3, v3 = (t.reshape(batch * heads, seq, dim) for t in (q, k, v))
    out = torch.empty_like(q3)
    acc_dtype = _acc_dtype(q)
    for bh, tm in tl.tile([batch * heads, seq], block_size=[1, None]):
        head = bh.begin
        qb = q3[head, tm, :]
        m_i = tl.full([tm], float("-inf"), dtype=acc_dtype)
        l_i = tl.zeros([tm], dtype=acc_dtype)
        acc = tl.zeros([tm, dim], dtype=acc_dtype)
        for tn in tl.tile(seq):
            s = tl.dot(qb, k3[head, tn, :].T, out_dtype=acc_dtype) / math.sqrt(dim)
            m_new = torch.maximum(m_i, s.amax(-1))
            p = torch.exp(s - m_new[:, None])
            alpha = torch.exp(m_i - m_new)
            l_i = l_i * alpha + p.sum(-1)
            acc = torch.addmm(acc * alpha[:, None], p.to(v3.dtype), v3[head, tn, :])
            m_i = m_new
        out[head, tm, :] = (acc / l_i[:, None]).to(out.dtype)
    return out.view(batch, heads, seq, dim)


@tfn.jit
def causal_attention(q, k, v):
    """[batch*heads, seq, dim]; exp2 with log2(e) folded into the scale; key tiles only up to the row tile's end."""
    bh, seq, dim = q.shape
    out = torch.empty_like(q)
    acc_dtype = _acc_dtype(q)
    scale = LOG2E / math.sqrt(dim)
    for b, tm in tl.tile([bh, seq], block_size=[1, None]):
        head = b.begin
        qb = q[head, tm, :]
        m_i = tl.full([tm], float("-inf"), dtype=acc_dtype)
        l_i = tl.zeros([tm], dtype=acc_dtype)
        acc = tl.zeros([tm, dim], dtype=acc_dtype)
        for tn in tl.tile(0, tm.end):
            s = tl.dot(qb, k[head, tn, :].T, out_dtype=acc_dtype) * scale
            s = torch.where(tm.index[:, None] >= tn.index[None, :], s, float("-inf"))
            m_new = torch.maximum(m_i, s.amax(-1))
            p = torch.exp2(s - m_new[:, None])
            alpha = torch.exp2(m_i - m_new)
            l_i = l_i * alpha + p.sum(-1)
            acc = acc * alpha[:, None]
            acc = torch.addmm(acc, p.to(v.dtype), v[head, tn, :])
            m_i = m_new
        out[head, tm, :] = (acc / l_i[:, None]).to(out.dtype)
    return out


@tfn.jit
def batched_attention(q, k, v):
    """Helion's form: a batch tile, bmm/baddbmm, the max of the unscaled scores scaled afterwards."""
    bh, seq, dim = q.shape
    out = torch.empty_like(q)
    acc_dtype = _acc_dtype(q)
    scale = LOG2E / math.sqrt(dim)
    for tb, tm in tl.tile([bh, seq]):
        qb = q[tb, tm, :]
        m_i = tl.full([tb, tm], float("-inf"), dtype=acc_dtype)
        l_i = torch.zeros_like(m_i)
        acc = tl.zeros([tb, tm, dim], dtype=acc_dtype)
        for tn in tl.tile(seq):
            qk = torch.bmm(qb, k[tb, tn, :].transpose(1, 2)).to(acc_dtype)
            m_new = torch.maximum(m_i, torch.amax(qk, -1) * scale)
            p = torch.exp2(qk * scale - m_new[:, :, None])
            alpha = torch.exp2(m_i - m_new)
            l_i = l_i * alpha + torch.sum(p, -1)
            acc = torch.baddbmm(acc * alpha[:, :, None], p.to(v.dtype), v[tb, tn, :])
            m_i = m_new
        out[tb, tm, :] = (acc / l_i[:, :, None]).to(out.dtype)
    return out


def sdpa(q, k, v, causal=False):
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def eager(q, k, v, causal=False):
    """softmax(q k^T / sqrt(d) [+ causal mask]) v, written out."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        seq = q.shape[-2]
        keep = torch.ones(seq, seq, dtype=torch.bool).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    return torch.softmax(scores, -1) @ v


@attrs.frozen
class Case:
    name: str
    kernel: object
    causal: bool
    rank: int  # 4: [batch, heads, seq, dim]; 3: [batch * heads, seq, dim]

    def inputs(self, batch, seq, dim, dtype=torch.float64):
        shape = (batch, 2, seq, dim) if self.rank == 4 else (batch * 2, seq, dim)
        return tuple(torch.randn(shape, dtype=dtype) for _ in range(3))

    def reference(self, q, k, v):
        return eager(q, k, v, self.causal)


CASES = [Case("attention", attention, False, 4), Case("causal_attention", causal_attention, True, 3),
         Case("batched_attention", batched_attention, False, 3)]


def eager_gradients(case: Case, args, cotangent):
    """torch autograd's gradients of q, k, v through the eager definition."""
    leaves = [a.detach().clone().requires_grad_(True) for a in args]
    return torch.autograd.grad(case.reference(*leaves), leaves, cotangent)
