"""Cross-entropy loss: per-row logsumexp(logits) - logits[label] in the kernel, mean on the host."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50), "large": (4096, 32768)}


@tfn.jit
def cross_entropy(logits, labels):
    n, v = logits.shape
    losses = torch.empty([n], dtype=torch.float32, device=logits.device)
    flat_logits = logits.view(-1)                                  # host code: a view
    for tn in tl.tile(n):
        rows = logits[tn, :].to(torch.float32)
        lse = torch.logsumexp(rows, dim=1)
        target = flat_logits[tn.index * v + labels[tn]].to(torch.float32)   # a gather
        losses[tn] = lse - target
    return losses.mean().to(logits.dtype)                          # host code, after the kernel


def reference(logits, labels):
    return torch.nn.functional.cross_entropy(logits.float(), labels).to(logits.dtype)


def make_inputs(device, dtype, size="small"):
    n, v = SIZES[size]
    logits = torch.randn(n, v, device=device, dtype=dtype)
    labels = torch.randint(0, v, (n,), device=device, dtype=torch.int64)
    return logits, labels


KERNELS = (cross_entropy,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
