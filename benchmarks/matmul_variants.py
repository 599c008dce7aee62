"""Time hand-picked matmul Configs (tilings x indexing x pid_type x warp specialization) against cuBLAS.

    python benchmarks/matmul_variants.py [size]

Shows which knobs the tuner's matmul seeds should cover. Candidates compile in parallel workers
and are checked against the default config's output, as in tuning.
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import torch
from triton.testing import do_bench

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import tilefn as tfn  # noqa: E402
from matmul import matmul  # noqa: E402
from tilefn.tune.benchmark import Benchmarker  # noqa: E402

TILES = ((128, 256, 64, 8, 3), (256, 128, 64, 8, 3), (128, 128, 64, 4, 4), (128, 128, 64, 8, 4),
         (128, 256, 64, 8, 4), (128, 128, 128, 8, 3))


def configs():
    for (m, n, k, warps, stages), indexing, pid, ws in itertools.product(
            TILES, ("pointer", "tensor_descriptor"), ("flat", "persistent_interleaved"), (False, True)):
        if ws and indexing == "pointer":
            continue
        yield tfn.Config(block_sizes=[m, n, k], l2_groupings=[8], num_warps=warps, num_stages=stages,
                         indexing=indexing, pid_type=pid, range_warp_specializes=[ws] if ws else [])


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    cublas = do_bench(lambda: a @ b, return_mode="median")
    bench = Benchmarker(matmul, (a, b), matmul.lower(a, b).config)
    candidates = list(configs())
    bench.prefetch(candidates)
    rows = sorted(((bench(c) * 1e3, c) for c in candidates), key=lambda row: row[0])
    print(f"cuBLAS {size}^3: {cublas:.4f} ms = {2 * size ** 3 / cublas / 1e9:.0f} TFLOP/s")
    print(f"{'ms':>7} {'% cuBLAS':>8}  config   (tuning's timing: do_bench warmup 5 ms, rep 20 ms)")
    for ms, config in rows:
        print(f"{ms:7.4f} {100 * cublas / ms:7.1f}%  {config}")
    print("\nthe best five and cuBLAS re-timed alike, interleaved, 3 rounds each of short and long do_bench:")
    top = [(config, matmul.lower(a, b, config=config).compile()) for _, config in rows[:5]]
    for name, rep in (("short", dict(warmup=5, rep=20)), ("long", dict(warmup=25, rep=100))):
        for _ in range(3):
            base = do_bench(lambda: a @ b, return_mode="median", **rep)
            ratios = [base / do_bench(lambda: run(a, b), return_mode="median", **rep) for _, run in top]
            print(f"  {name}: cuBLAS {base:.4f} ms; " + " ".join(f"{100 * r:.1f}%" for r in ratios))


if __name__ == "__main__":
    main()
