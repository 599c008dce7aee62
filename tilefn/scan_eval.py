"""Eager scans and reductions with a combine function over tuples of tensors (the interpreter's definition).

`combine(left, right)` takes and returns lists of tensors and works elementwise, so each step combines
every lane at once: a scan takes log2(n) steps (Hillis-Steele), a reduction a halving tree. Both keep the
order of the elements (left before right), so an associative combine need not commute.
"""
from __future__ import annotations

import torch


def inclusive_scan(combine, xs: list, axis: int, reverse: bool = False) -> list:
    """out[i] = x[0] op ... op x[i] along `axis` (reversed: x[n-1] op ... op x[i], as a scan of the flipped values)."""
    if reverse:
        return [torch.flip(o, [axis]) for o in inclusive_scan(combine, [torch.flip(x, [axis]) for x in xs], axis)]
    n = xs[0].shape[axis]
    out, step = list(xs), 1
    while step < n:
        combined = combine([o.narrow(axis, 0, n - step) for o in out], [o.narrow(axis, step, n - step) for o in out])
        out = [torch.cat([o.narrow(axis, 0, step), c.to(o.dtype)], axis) for o, c in zip(out, combined)]
        step *= 2
    return out


def tree_reduce(combine, xs: list, axis: int, keepdim: bool) -> list:
    """x[0] op x[1] op ... along `axis`, adjacent pairs first."""
    out = list(xs)
    while out[0].shape[axis] > 1:
        n = out[0].shape[axis]
        even = torch.arange(0, n - 1, 2, device=out[0].device)
        pairs = combine([o.index_select(axis, even) for o in out], [o.index_select(axis, even + 1) for o in out])
        pairs = [c.to(o.dtype) for o, c in zip(out, pairs)]
        out = [torch.cat([c, o.narrow(axis, n - 1, 1)], axis) if n % 2 else c for o, c in zip(out, pairs)]
    return out if keepdim else [o.squeeze(axis) for o in out]
