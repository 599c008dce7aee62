"""Per-row mean and variance in one sweep over column tiles (Welford / Chan's parallel update):
the carries count, mean and m2 merge each tile's own statistics into the running ones."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50), "large": (4096, 65536)}


@tfn.jit
def welford(x):
    m, n = x.shape
    mean = torch.empty([m], dtype=torch.float32, device=x.device)
    var = torch.empty([m], dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        count = tl.zeros([tm], dtype=torch.float32)
        run_mean = tl.zeros([tm], dtype=torch.float32)
        m2 = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(n):
            chunk = x[tm, tn].to(torch.float32)
            chunk_count = (tn.end - tn.begin).to(torch.float32)  # valid columns in this tile
            chunk_mean = torch.sum(chunk, dim=1) / chunk_count
            centered = chunk - chunk_mean[:, None]
            chunk_m2 = torch.sum(centered * centered, dim=1)
            total = count + chunk_count
            delta = chunk_mean - run_mean
            run_mean = run_mean + delta * (chunk_count / total)
            m2 = m2 + chunk_m2 + delta * delta * (count * chunk_count / total)
            count = total
        mean[tm] = run_mean
        var[tm] = m2 / count                                    # population variance
    return mean, var


def reference(x):
    var, mean = torch.var_mean(x.to(torch.float32), dim=1, correction=0)
    return mean, var


def make_inputs(device, dtype, size="small"):
    return (torch.randn(SIZES[size], device=device, dtype=dtype) * 2 + 3,)


KERNELS = (welford,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
