"""The derived cross-entropy backward alone, in a fresh process: the label's cotangent fused into the row's
(`autodiff/row_fusion.py`, the default) against the deferred scatter sorted on the host after the kernel
(the fusion turned off), and torch.compile's backward.

    python benchmarks/ce_backward_profile.py

Checks that no op of a call synchronises (torch.cuda.set_sync_debug_mode), then times each variant in
three interleaved rounds (do_bench and wall time over 50 calls) and prints the CUDA profile of five calls
of each tilefn variant.
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from triton.testing import do_bench

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import tilefn as tfn  # noqa: E402
import tilefn.autodiff.deferred as deferred  # noqa: E402
import cross_entropy  # noqa: E402


def main() -> None:
    logits = torch.randn(8192, 32768, device="cuda", dtype=torch.bfloat16)
    labels = torch.randint(0, 32768, (8192,), device="cuda")
    grad = torch.tensor(1.0, device="cuda", dtype=torch.bfloat16)
    chosen, kernels = deferred.plan_fusion, {}
    for name, plan in (("fused", chosen), ("deferred", lambda *args: None)):
        deferred.plan_fusion = plan  # (read while the backward is traced)
        kernels[name] = tfn.vjp(cross_entropy.cross_entropy)
        kernels[name](logits, labels, grad)
    deferred.plan_fusion = chosen
    want = kernels["deferred"](logits, labels, grad)[0].float()
    print("fused vs deferred, largest difference:", (kernels["fused"](logits, labels, grad)[0].float() - want).abs().max().item())
    leaf = logits.detach().clone().requires_grad_(True)
    out = torch.compile(cross_entropy.reference)(leaf, labels)
    peers = {"compile": lambda: torch.autograd.grad(out, [leaf], grad, retain_graph=True)}
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for kernel in kernels.values():
            kernel(logits, labels, grad)
        torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode(0)
    print("synchronising ops:", sorted({str(w.message)[:100] for w in caught if "prototype" not in str(w.message)}))
    for round_ in range(3):
        calls = {**{name: (lambda k=k: k(logits, labels, grad)) for name, k in kernels.items()}, **peers}
        for name, call in calls.items():
            ms = do_bench(call)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(50):
                call()
            torch.cuda.synchronize()
            print(f"round {round_} {name}: do_bench {ms:.3f} ms, wall {(time.perf_counter() - start) / 50 * 1e3:.3f} ms")
    for name, kernel in kernels.items():
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                kernel(logits, labels, grad)
            torch.cuda.synchronize()
        print(name, prof.key_averages().table(sort_by="cuda_time_total", row_limit=10, max_name_column_width=50))


if __name__ == "__main__":
    main()
