"""Attention forward (flash style: online softmax over key tiles, nothing of size seq^2 in memory).

q, k, v: [batch, heads, seq, head_dim]; each program owns a tile of query rows of one head, walks the
key/value tiles, keeps a running max `m` and sum `l` of the exponentials, and rescales its
accumulator when the max grows. exp2 with log2(e) folded into the scale, as FlashAttention does.
`causal_attention` lets each query see only the keys up to its own position: a row tile walks the key
tiles up to its own end, masking the scores above the diagonal. `causal_attention_split` walks the
same keys in two loops: those before its row tile's start, which every row sees (no mask), then the
diagonal band, masked; the masking arithmetic leaves all key tiles but the diagonal ones.
"""
from __future__ import annotations

import functools
import math

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (2, 3, 50, 16), "large": (4, 32, 4096, 128)}
LOG2E = 1.4426950408889634


def online_softmax_step(m_i, l_i, acc, scores, values):
    """One key tile: the running max and sum grown by `scores`, the accumulator rescaled and `values` added."""
    m_new = torch.maximum(m_i, scores.amax(-1))
    p = torch.exp2(scores - m_new[:, None])
    alpha = torch.exp2(m_i - m_new)
    return m_new, l_i * alpha + p.sum(-1), torch.addmm(acc * alpha[:, None], p.to(values.dtype), values)


@tfn.jit
def attention(q, k, v):
    batch, heads, seq, dim = q.shape
    q3, k3, v3 = (t.reshape(batch * heads, seq, dim) for t in (q, k, v))
    out = torch.empty_like(q3)
    scale = LOG2E / math.sqrt(dim)
    for bh, tm in tl.tile([batch * heads, seq], block_size=[1, None]):
        head = bh.begin  # one (batch, head) per program: its values are 2-d [rows, dim]
        qb = q3[head, tm, :]
        m_i = tl.full([tm], float("-inf"), dtype=torch.float32)
        l_i = tl.zeros([tm], dtype=torch.float32)
        acc = tl.zeros([tm, dim], dtype=torch.float32)
        for tn in tl.tile(seq):
            scores = tl.dot(qb, k3[head, tn, :].T, out_dtype=torch.float32) * scale
            m_i, l_i, acc = online_softmax_step(m_i, l_i, acc, scores, v3[head, tn, :])
        out[head, tm, :] = (acc / l_i[:, None]).to(out.dtype)
    return out.view(batch, heads, seq, dim)


def _causal(q, k, v, split):
    """Causal attention; with `split`, the keys before the row tile (below the diagonal for every row) in
    a loop of their own that masks nothing, then the diagonal band masked."""
    batch, heads, seq, dim = q.shape
    q3, k3, v3 = (t.reshape(batch * heads, seq, dim) for t in (q, k, v))
    out = torch.empty_like(q3)
    scale = LOG2E / math.sqrt(dim)
    for bh, tm in tl.tile([batch * heads, seq], block_size=[1, None]):
        head = bh.begin
        qb = q3[head, tm, :]
        m_i = tl.full([tm], float("-inf"), dtype=torch.float32)
        l_i = tl.zeros([tm], dtype=torch.float32)
        acc = tl.zeros([tm, dim], dtype=torch.float32)
        if split:
            for tn in tl.tile(0, tm.begin):
                scores = tl.dot(qb, k3[head, tn, :].T, out_dtype=torch.float32) * scale
                m_i, l_i, acc = online_softmax_step(m_i, l_i, acc, scores, v3[head, tn, :])
        for tn in tl.tile(tm.begin if split else 0, tm.end):  # (the key tiles up to this row tile's end)
            scores = tl.dot(qb, k3[head, tn, :].T, out_dtype=torch.float32) * scale
            scores = torch.where(tm.index[:, None] >= tn.index[None, :], scores, float("-inf"))
            m_i, l_i, acc = online_softmax_step(m_i, l_i, acc, scores, v3[head, tn, :])
        out[head, tm, :] = (acc / l_i[:, None]).to(out.dtype)
    return out.view(batch, heads, seq, dim)


@tfn.jit
def causal_attention(q, k, v):
    return _causal(q, k, v, split=False)


@tfn.jit
def causal_attention_split(q, k, v):
    return _causal(q, k, v, split=True)


def reference(q, k, v, causal=False):
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)


def make_inputs(device, dtype, size="small"):
    """q, k, v of SIZES[size], or of `size` itself where it is a (batch, heads, seq, dim) shape."""
    shape = SIZES[size] if isinstance(size, str) else tuple(size)
    return tuple(torch.randn(shape, device=device, dtype=dtype) for _ in range(3))


KERNELS = (attention,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
    run_example((causal_attention, causal_attention_split), functools.partial(reference, causal=True), make_inputs,
                dtypes=(torch.float32, torch.bfloat16))
