"""Shared by the example scripts: pick a device, compare a kernel's output with eager PyTorch."""
from __future__ import annotations

import torch

# Tolerances per output dtype: (atol, rtol). Half-precision outputs are rounded once at the end.
TOLERANCES = {torch.float32: (1e-4, 1e-4), torch.bfloat16: (2e-2, 2e-2), torch.float16: (5e-3, 5e-3)}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def max_error(out, ref) -> float:
    if isinstance(out, (tuple, list)):
        return max(max_error(o, r) for o, r in zip(out, ref))
    return (out.float() - ref.float()).abs().max().item() if out.numel() else 0.0


def assert_close(out, ref, atol=None, rtol=None):
    if isinstance(out, (tuple, list)):
        for o, r in zip(out, ref):
            assert_close(o, r, atol, rtol)
        return
    default_atol, default_rtol = TOLERANCES.get(ref.dtype, (0, 0))
    torch.testing.assert_close(out, ref, atol=default_atol if atol is None else atol,
                               rtol=default_rtol if rtol is None else rtol)


def run_example(kernels, reference, make_inputs, dtypes=(torch.float32,), atol=None, rtol=None):
    """Run each kernel on small random inputs, compare with `reference`, print the max error."""
    device = default_device()
    kernels = kernels if isinstance(kernels, (list, tuple)) else [kernels]
    for dtype in dtypes:
        torch.manual_seed(0)
        args = make_inputs(device, dtype)
        expected = reference(*args)
        for kernel in kernels:
            out = kernel(*args)
            assert_close(out, expected, atol, rtol)
            name = getattr(kernel, "__name__", type(kernel).__name__)
            print(f"{name:<22} {str(dtype):<15} on {device}: max error {max_error(out, expected):.3g}  OK")
