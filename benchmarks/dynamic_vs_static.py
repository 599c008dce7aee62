"""static_shapes=False vs the static default on the GPU: kernel time and call-path overhead; one table.

    python benchmarks/dynamic_vs_static.py [--only softmax,matmul] [--calls 2000]

Per example (the examples' large bf16 inputs, default heuristic Configs, no tuning): the static kernel's
time, the dynamic kernel's (sizes and strides runtime arguments, masks kept), their ratio (the target is
<= 1.05), after checking that both agree with eager torch. Then the host time of one call on tiny inputs
(a 8 x 64 rms_norm: the launch dominates; median of 7 interleaved rounds) for the static kernel, the dynamic one with the same sizes every
call, and the dynamic one with the batch size changing every call (one compile serves them all), and the
difference to the static call in us (the target is <= 1 us).
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import tilefn as tfn  # noqa: E402

EXAMPLES = ["softmax", "layer_norm", "rms_norm", "matmul", "cross_entropy"]


def kernel_times(name: str) -> tuple[float, float]:
    """(static ms, dynamic ms) of the example's first kernel on its large bf16 inputs."""
    from triton.testing import do_bench

    module = importlib.import_module(name)
    fn = module.KERNELS[0].fn
    args = module.make_inputs("cuda", torch.bfloat16, "large")
    static, dynamic = tfn.jit(fn), tfn.jit(fn, static_shapes=False)
    want = module.reference(*args)
    for kernel in (static, dynamic):
        torch.testing.assert_close(kernel(*args).float(), want.float(), atol=5e-2, rtol=5e-2)
    return do_bench(lambda: static(*args)), do_bench(lambda: dynamic(*args))


def call_us(kernel, inputs: list, calls: int) -> float:
    """Host wall time per call over `calls` calls cycling through `inputs`, between two synchronizes."""
    for args in inputs:
        kernel(*args)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(calls):
        kernel(*inputs[i % len(inputs)])
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls * 1e6


def call_path_rows(calls: int) -> list[tuple[str, float]]:
    """(label, us per call) of rms_norm on 8 x 64: static, dynamic, dynamic with m changing every call;
    the median of 7 interleaved rounds (the host's speed drifts between them)."""
    fn = importlib.import_module("rms_norm").KERNELS[0].fn
    weight = torch.randn(64, device="cuda")
    same = [(torch.randn(8, 64, device="cuda"), weight)]
    changing = [(torch.randn(m, 64, device="cuda"), weight) for m in (8, 9, 12, 16)]
    runs = {"static": (tfn.jit(fn), same), "dynamic": (tfn.jit(fn, static_shapes=False), same),
            "dynamic, m varies": (tfn.jit(fn, static_shapes=False), changing)}
    samples = {label: [] for label in runs}
    for _ in range(7):
        for label, (kernel, inputs) in runs.items():
            samples[label].append(call_us(kernel, inputs, calls))
    return [(label, statistics.median(values)) for label, values in samples.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(EXAMPLES))
    parser.add_argument("--calls", type=int, default=2000)
    options = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("dynamic_vs_static.py needs a CUDA GPU")
    print(f"{'kernel':<16}{'static ms':>12}{'dynamic ms':>12}{'dyn/static':>12}")
    for name in options.only.split(","):
        static_ms, dynamic_ms = kernel_times(name)
        print(f"{name:<16}{static_ms:>12.4f}{dynamic_ms:>12.4f}{dynamic_ms / static_ms:>12.3f}")

    rows = call_path_rows(options.calls)
    static_us = rows[0][1]
    print(f"\n{'call path (8 x 64 rms_norm)':<30}{'us/call':>10}{'- static':>10}")
    for label, us in rows:
        print(f"{label:<30}{us:>10.2f}{us - static_us:>10.2f}")


if __name__ == "__main__":
    main()
