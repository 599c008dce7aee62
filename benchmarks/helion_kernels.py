"""Helion kernels for the peer column of bench.py: the same math as tilefn's examples of the same
name (bf16 in and out, fp32 inside), written with Helion's public API (`helion.kernel`, `hl.tile`).

Each kernel has a fixed Config, so Helion compiles it once and does not autotune. The configs
are the knobs that Helion's own H100 (sm90) pretuned heuristics pick for bench.py's shapes
(pretuned_kernels/*/_helion_aot_*_cuda_sm90.py in pytorch/helion): one row per program, the row
held whole (no reduction loop), 16 warps. With BENCH_HELION_TUNE=1 every kernel autotunes
instead, with `autotune_effort="quick"` (about a minute or two per kernel and shape).

Importing this module needs helion (written against helion 1.4.0, the last release whose CI ran
torch 2.11); if the import fails, bench.py shows "-" in the Helion column.
"""
from __future__ import annotations

import importlib.util
import os

import torch

import helion

if getattr(helion, "__file__", None) is None:  # examples/helion/ (no __init__.py) found instead of the library
    raise ImportError("helion is not installed")

import helion.language as hl  # noqa: E402

TUNE = os.environ.get("BENCH_HELION_TUNE", "") not in ("", "0")

if importlib.util.find_spec("sklearn") is None:
    # Helion's default search (LFBOTreeSearch) needs scikit-learn, which the device lacks (and is
    # too big to carry); its plain PatternSearch does not. Only autotuning reads this.
    os.environ.setdefault("HELION_AUTOTUNER", "PatternSearch")


def _kernel(config: helion.Config, **settings):
    """`helion.kernel` with a fixed config, or quick autotuning under BENCH_HELION_TUNE=1."""
    if TUNE:
        return helion.kernel(autotune_effort="quick", **settings)
    return helion.kernel(config=config, **settings)


def _row_config(num_warps: int, num_stages: int) -> helion.Config:
    """One row per program, the whole row in registers."""
    return helion.Config(block_sizes=[1], reduction_loops=[None], num_warps=num_warps, num_stages=num_stages)


@_kernel(_row_config(num_warps=16, num_stages=2))
def softmax(x: torch.Tensor) -> torch.Tensor:
    m, _ = x.size()
    out = torch.empty_like(x)
    for tile_m in hl.tile(m):
        row = x[tile_m, :].to(torch.float32)
        numerator = torch.exp(row - torch.amax(row, dim=1, keepdim=True))
        out[tile_m, :] = (numerator / torch.sum(numerator, dim=1, keepdim=True)).to(out.dtype)
    return out


@_kernel(_row_config(num_warps=16, num_stages=4))
def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    m, _ = x.size()
    out = torch.empty_like(x)
    for tile_m in hl.tile(m):
        row = x[tile_m, :].to(torch.float32)
        centered = row - torch.mean(row, dim=1, keepdim=True)
        variance = torch.mean(centered * centered, dim=1, keepdim=True)
        normalized = centered * torch.rsqrt(variance + eps)
        out[tile_m, :] = (normalized * weight[:].to(torch.float32) + bias[:].to(torch.float32)).to(out.dtype)
    return out


@_kernel(_row_config(num_warps=16, num_stages=1))
def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    m, _ = x.size()
    out = torch.empty_like(x)
    for tile_m in hl.tile(m):
        row = x[tile_m, :].to(torch.float32)
        inv_rms = torch.rsqrt(torch.mean(row * row, dim=1, keepdim=True) + eps)
        out[tile_m, :] = (row * inv_rms * weight[:].to(torch.float32)).to(out.dtype)
    return out


# The mean over rows runs on the host after the kernel, as in tilefn's example: Helion warns
# about tensor operations outside the tile loop unless told not to.
@_kernel(_row_config(num_warps=16, num_stages=1), ignore_warnings=[helion.exc.TensorOperationInWrapper])
def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    n, v = logits.size()
    losses = torch.empty([n], dtype=torch.float32, device=logits.device)
    flat_logits = logits.view(-1)
    for tile_n in hl.tile(n):
        rows = logits[tile_n, :].to(torch.float32)
        row_max = torch.amax(rows, dim=1)
        sum_exp = torch.sum(torch.exp(rows - row_max[:, None]), dim=1)
        target = hl.load(flat_logits, [tile_n.index * v + labels[tile_n]]).to(torch.float32)
        losses[tile_n] = row_max + torch.log(sum_exp) - target
    return losses.mean().to(logits.dtype)


# bench.py row (example module) name -> kernel with the same arguments as tilefn's kernel.
KERNELS = {
    "softmax": softmax,
    "layer_norm": layer_norm,
    "rms_norm": rms_norm,
    "cross_entropy": cross_entropy,
}
