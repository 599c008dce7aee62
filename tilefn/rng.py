"""Repeatable runs of kernels that draw random numbers without a seed of their own (torch.rand_like,
dropout in a tile loop: their seeds come from torch's default generators at each call)."""
from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def same_draws(args, seed: int = 0):
    """Run the body with torch's default generators (the CPU's and those of the CUDA devices among
    `args`) seeded with `seed`, and restore them afterwards: runs inside draw the same seeds."""
    devices = sorted({a.device.index or 0 for a in args if isinstance(a, torch.Tensor) and a.is_cuda})
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
