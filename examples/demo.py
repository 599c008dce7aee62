"""`make demo`: trace two example kernels, print their programs, run them and check them against
eager PyTorch. Small inputs; runs on the CPU when there is no GPU."""
from __future__ import annotations

import torch

import tilefn as tfn
from _util import default_device, max_error

import matmul as matmul_example
import softmax as softmax_example


def show(title, kernel, reference, args, atol, rtol):
    print(f"=== {title} " + "=" * max(0, 72 - len(title)))
    print(tfn.make_ir(kernel)(*args))
    out = kernel(*args)
    expected = reference(*args)
    ok = torch.allclose(out, expected, atol=atol, rtol=rtol)
    shapes = " x ".join(str(list(a.shape)) for a in args)
    print(f"{kernel.__name__}({shapes}) on {args[0].device}: max error vs eager torch "
          f"{max_error(out, expected):.3g}  {'OK' if ok else 'MISMATCH'}\n")
    return ok


def main():
    torch.manual_seed(0)
    device = default_device()
    x, y = matmul_example.make_inputs(device, torch.float32)
    ok = show("matmul", matmul_example.matmul, matmul_example.reference, (x, y), 1e-4, 1e-4)
    (rows,) = softmax_example.make_inputs(device, torch.float32)
    ok &= show("softmax (one pass)", softmax_example.softmax, softmax_example.reference, (rows,), 1e-5, 1e-5)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
