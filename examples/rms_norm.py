"""RMSNorm over the last dimension: x * rsqrt(mean(x^2) + eps) * weight, whole rows per program."""
from __future__ import annotations

import torch

import tilefn as tfn
from tilefn import lang as tl

SIZES = {"small": (37, 50), "large": (4096, 4096)}


@tfn.jit
def rms_norm(x, weight, eps: float = 1e-5):
    m, _ = x.shape
    out = torch.empty_like(x)
    for tm in tl.tile(m):
        row = x[tm, :].to(torch.float32)
        inv_rms = torch.rsqrt(torch.mean(row * row, dim=1, keepdim=True) + eps)
        out[tm, :] = row * inv_rms * weight[:].to(torch.float32)
    return out


def reference(x, weight, eps: float = 1e-5):
    return torch.nn.functional.rms_norm(x, [x.shape[-1]], weight, eps)


def make_inputs(device, dtype, size="small"):
    m, n = SIZES[size]
    return torch.randn(m, n, device=device, dtype=dtype), torch.randn(n, device=device, dtype=dtype)


KERNELS = (rms_norm,)

if __name__ == "__main__":
    from _util import run_example

    run_example(KERNELS, reference, make_inputs, dtypes=(torch.float32, torch.bfloat16))
