"""Jagged (segment) row sums: row r of a jagged tensor is values[offsets[r]:offsets[r+1], :]; sum
each row's vectors. The outer loop gives one program per row; the inner loop's bounds are
read from `offsets` on the device."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (7, 12, 50), "large": (1024, 512, 1024)}  # rows, max row length, feature dim


@tfn.jit
def jagged_sum(values, offsets):
    num_rows = offsets.shape[0] - 1
    d = values.shape[1]
    out = torch.empty([num_rows, d], dtype=values.dtype, device=values.device)
    for r in tl.grid(num_rows):
        start = offsets[r]
        end = offsets[r + 1]
        for td in tl.tile(d):
            acc = tl.zeros([td], dtype=torch.float32)
            for tv in tl.tile(start, end):                       # data-dependent bounds
                acc = acc + torch.sum(values[tv, td].to(torch.float32), dim=0)
            out[r, td] = acc
    return out


def reference(values, offsets):
    bounds = offsets.tolist()
    rows = [values[b:e].float().sum(dim=0) for b, e in zip(bounds[:-1], bounds[1:])]
    return torch.stack(rows).to(values.dtype)


def make_inputs(device, dtype, size="small"):
    num_rows, max_len, d = SIZES[size]
    lengths = torch.randint(0, max_len + 1, (num_rows,))
    lengths[0] = 0                                               # an empty row
    offsets = torch.zeros(num_rows + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(lengths, dim=0)
    values = torch.randn(int(offsets[-1]), d, device=device, dtype=dtype)
    return values, offsets.to(device)


KERNELS = (jagged_sum,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
