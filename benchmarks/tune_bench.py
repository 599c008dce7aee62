"""Tuning on the GPU: wall time of `effort="quick"` and `"full"` and the speed of what each finds.

    python benchmarks/tune_bench.py [--only matmul] [--efforts quick,full] [--helion [--helion-efforts quick]]

Each tuning starts cold: an empty tilefn tune cache and an empty Triton kernel cache.
With --helion, the kernels that benchmarks/helion_kernels.py also writes in Helion (softmax,
layer_norm) are autotuned by Helion too, cold the same way and without reading Helion's autotune
cache (its search is PatternSearch where scikit-learn is missing; the line says which).
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from triton.testing import do_bench

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import tilefn as tfn  # noqa: E402
from tilefn.tune import workers  # noqa: E402

BF16 = torch.bfloat16


def cases():
    return [
        ("matmul", "matmul", "matmul", lambda: (torch.randn(4096, 4096, device="cuda", dtype=BF16),
                                                 torch.randn(4096, 4096, device="cuda", dtype=BF16)), "cublas"),
        ("softmax", "softmax", "softmax", lambda: (torch.randn(4096, 16384, device="cuda", dtype=BF16),), "copy"),
        ("layer_norm", "layer_norm", "layer_norm",
         lambda: (torch.randn(16384, 8192, device="cuda", dtype=BF16), torch.randn(8192, device="cuda", dtype=BF16),
                  torch.randn(8192, device="cuda", dtype=BF16)), "copy"),
        ("linear", "linear", "linear", lambda: (torch.randn(4096, 4096, device="cuda", dtype=BF16),
                                                 torch.randn(4096, 4096, device="cuda", dtype=BF16)), "cublas"),
        ("attention", "attention", "attention",
         lambda: tuple(torch.randn(4, 32, 4096, 128, device="cuda", dtype=BF16) for _ in range(3)), "sdpa"),
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="")
    parser.add_argument("--efforts", default="quick,full")
    parser.add_argument("--helion", action="store_true", help="also time Helion's autotuning of the same kernels")
    parser.add_argument("--helion-efforts", default="quick", help="Helion's full effort takes many minutes")
    opts = parser.parse_args()
    helion_kernels = importlib.import_module("helion_kernels") if opts.helion else None
    a, b = torch.randn(4096, 4096, device="cuda", dtype=BF16), torch.randn(4096, 4096, device="cuda", dtype=BF16)
    cublas = do_bench(lambda: a @ b, return_mode="median")
    src = torch.randn(256 * 1024 * 1024, device="cuda", dtype=BF16)
    dst = torch.empty_like(src)
    copy_gbs = 2 * src.numel() * 2 / (do_bench(lambda: dst.copy_(src), return_mode="median") * 1e-3) / 1e9
    print(f"cuBLAS 4096^3 {cublas:.3f} ms; copy {copy_gbs:.0f} GB/s")
    rows = []
    for name, module_name, attr, make, ceiling in cases():
        if opts.only and name not in opts.only.split(","):
            continue
        module = importlib.import_module(module_name)
        args = make()
        default_ms = do_bench(lambda: getattr(module, attr)(*args), return_mode="median")
        nbytes = sum(t.numel() * t.element_size() for t in args) * (2 if ceiling == "copy" else 1)

        def measure(run, ceiling=ceiling, nbytes=nbytes):
            """(ms, quality): the kernel and its ceiling timed alike in 3 interleaved rounds, medians
            (the GPU's clocks drift as it heats over minutes of tuning: a ceiling timed once at the
            start flatters or penalises whatever runs later)."""
            times, fractions = [], []
            for _ in range(3):
                ms = do_bench(run, return_mode="median")
                if ceiling == "cublas":
                    fractions.append(do_bench(lambda: a @ b, return_mode="median") / ms)
                elif ceiling == "sdpa":
                    fractions.append(do_bench(lambda: module.reference(*args), return_mode="median") / ms)
                else:
                    copy_ms = do_bench(lambda: dst.copy_(src), return_mode="median")
                    fractions.append(nbytes / ms / (2 * src.numel() * src.element_size() / copy_ms))
                times.append(ms)
            unit = {"cublas": "cuBLAS", "sdpa": "SDPA"}.get(ceiling, "copy")
            return statistics.median(times), f"{100 * statistics.median(fractions):.0f}% of {unit}"
        for effort in opts.efforts.split(","):
            with tempfile.TemporaryDirectory() as cache:
                os.environ["TILEFN_CACHE_DIR"] = cache
                os.environ["TRITON_CACHE_DIR"] = os.path.join(cache, "triton")
                kernel = tfn.jit(getattr(module, attr).fn)
                tuned = tfn.tune(kernel, effort=effort)
                start = time.perf_counter()
                config = tuned.best_config(*args)
                seconds = time.perf_counter() - start
                out, ref = tuned(*args), module.reference(*args)
                err = ((out.float() - ref.float()).norm() / ref.float().norm()).item()
                ms, quality = measure(lambda: tuned(*args))
                workers.shutdown()  # the next tuning starts with cold caches in its workers too
            report(rows, name, effort, seconds, ms, default_ms, quality, err, config)
        if helion_kernels is not None and name in helion_kernels.KERNELS:
            for effort in opts.helion_efforts.split(","):
                seconds, run, err, config = tune_helion(helion_kernels.KERNELS[name], effort, args, module.reference)
                ms, quality = measure(run)
                report(rows, name, f"helion {effort}", seconds, ms, default_ms, quality, err, config)
    print("\nkernel      effort        tune s    ms   default ms  quality   (default ms: tilefn's untuned Config)")
    for name, effort, seconds, ms, default_ms, quality_text, err, config in rows:
        print(f"{name:<11} {effort:<12} {seconds:6.1f} {ms:7.3f} {default_ms:9.3f}   {quality_text}")


def report(rows, name, effort, seconds, ms, default_ms, quality_text, err, config):
    rows.append((name, effort, seconds, ms, default_ms, quality_text, err, config))
    print(f"{name:<11} {effort:<6} tuned in {seconds:6.1f} s: {ms:.3f} ms ({quality_text}), "
          f"default {default_ms:.3f} ms, relerr {err:.1e}, {config}", flush=True)


def tune_helion(kernel, effort, args, reference):
    """Autotune a fresh copy of a Helion kernel from cold caches: (seconds, a call of it, relerr, config)."""
    import helion

    with tempfile.TemporaryDirectory() as cache:
        os.environ["TRITON_CACHE_DIR"] = os.path.join(cache, "triton")
        fresh = helion.kernel(kernel.fn, autotune_effort=effort)
        print(f"helion autotuner: {os.environ.get('HELION_AUTOTUNER', 'default (LFBOTreeSearch)')}", flush=True)
        start = time.perf_counter()
        config = fresh.autotune(args, force=True)  # force: no reads from Helion's autotune cache
        seconds = time.perf_counter() - start
        out, ref = fresh(*args), reference(*args)
        err = ((out.float() - ref.float()).norm() / ref.float().norm()).item()
    return seconds, lambda: fresh(*args), err, config


if __name__ == "__main__":
    main()
