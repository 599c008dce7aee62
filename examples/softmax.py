"""Row softmax, three ways: one torch call on whole rows, the same decomposed by hand, and a
two-pass online softmax that loops over column tiles (for rows too long to hold at once)."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50), "large": (4096, 4096)}


@tfn.jit
def softmax(x):
    """One pass: each program loads whole rows."""
    m, _ = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        out[tm, :] = torch.softmax(x[tm, :], dim=1)
    return out


@tfn.jit
def softmax_decomposed(x):
    """One pass with the max, exp and sum written out."""
    m, _ = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        row = x[tm, :].to(torch.float32)
        row_max = torch.amax(row, dim=1, keepdim=True)
        numerator = torch.exp(row - row_max)
        denominator = torch.sum(numerator, dim=1, keepdim=True)
        out[tm, :] = numerator / denominator
    return out


@tfn.jit
def softmax_two_pass(x):
    """Pass 1 keeps a running max `mi` and a running sum `li` rescaled to it; pass 2 normalises."""
    m, n = x.shape
    out = torch.empty_like(x)
    block_n = tl.register_block_size(n)
    for tm in tl.tile(m):
        mi = tl.full([tm], float("-inf"), dtype=torch.float32)
        li = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(n, block_size=block_n):
            values = x[tm, tn].to(torch.float32)
            m_next = torch.maximum(mi, torch.amax(values, dim=1))
            li = li * torch.exp(mi - m_next) + torch.sum(torch.exp(values - m_next[:, None]), dim=1)
            mi = m_next
        for tn in tl.tile(n, block_size=block_n):
            values = x[tm, tn].to(torch.float32)
            out[tm, tn] = torch.exp(values - mi[:, None]) / li[:, None]
    return out


def reference(x):
    return torch.softmax(x.to(torch.float32), dim=1).to(x.dtype)


def make_inputs(device, dtype, size="small"):
    return (torch.randn(SIZES[size], device=device, dtype=dtype),)


KERNELS = (softmax, softmax_decomposed, softmax_two_pass)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
