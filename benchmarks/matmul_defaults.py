"""Time hand-picked Configs of the compute-bound examples against cuBLAS / SDPA (to set the defaults).

    python benchmarks/matmul_defaults.py [--only matmul,linear,bmm,attention]

One table: each kernel's default Config first, then the variants, as a fraction of the peer's time
measured in the same run (interleaved: the peer is re-timed before each variant).
"""
from __future__ import annotations

import argparse
import importlib
import itertools
import sys
from pathlib import Path

import torch
from triton.testing import do_bench

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import tilefn as tfn  # noqa: E402

BF16 = torch.bfloat16


def _mm_variants():
    for (bm, bn, bk), group, stages, indexing in itertools.product(
            [(128, 128, 64), (128, 256, 64), (256, 128, 64)], [1, 8], [3, 4], ["pointer", "tensor_descriptor"]):
        yield tfn.Config(block_sizes=[bm, bn, bk], l2_groupings=[group], num_warps=8, num_stages=stages,
                         indexing=indexing)


def _bmm_variants():
    for (bm, bn, bk), warps, stages in itertools.product([(64, 64, 64), (128, 128, 64), (128, 64, 64)], [4, 8], [3, 4]):
        yield tfn.Config(block_sizes=[1, bm, bn, bk], num_warps=warps, num_stages=stages)


def _attention_variants():
    for (bm, bn), warps, stages, indexing in itertools.product(
            [(64, 64), (128, 64), (128, 128)], [4, 8], [2, 3], ["pointer", "tensor_descriptor"]):
        yield tfn.Config(block_sizes=[1, bm, bn], num_warps=warps, num_stages=stages, indexing=indexing)


def cases():
    mm = lambda: (torch.randn(4096, 4096, device="cuda", dtype=BF16), torch.randn(4096, 4096, device="cuda", dtype=BF16))  # noqa: E731
    return [("matmul", mm, _mm_variants), ("linear", mm, _mm_variants),
            ("bmm", lambda: (torch.randn(64, 512, 512, device="cuda", dtype=BF16),
                             torch.randn(64, 512, 512, device="cuda", dtype=BF16)), _bmm_variants),
            ("attention", lambda: tuple(torch.randn(4, 32, 4096, 128, device="cuda", dtype=BF16) for _ in range(3)),
             _attention_variants)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="")
    opts = parser.parse_args()
    for name, make, variants in cases():
        if opts.only and name not in opts.only.split(","):
            continue
        module = importlib.import_module(name)
        kernel, args = getattr(module, name), make()
        ref = module.reference(*args)
        rows = []
        for config in [None, *variants()]:
            jitted = tfn.jit(kernel.fn, config=config)
            try:
                out = jitted(*args)
                err = ((out.float() - ref.float()).norm() / ref.float().norm()).item()
                ms = do_bench(lambda: jitted(*args), return_mode="median")
            except Exception as exc:  # a config the compiler refuses: say so, go on
                print(f"{name} {config}: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}", flush=True)
                continue
            peer = do_bench(lambda: module.reference(*args), return_mode="median")
            rows.append((peer / ms, ms, err, "default" if config is None else repr(config)))
        rows.sort(key=lambda r: -r[0])
        print(f"\n{name}: fraction of the peer (cuBLAS / SDPA) | ms | relerr | config")
        for fraction, ms, err, text in rows[:8] + [r for r in rows[8:] if r[3] == "default"]:
            print(f"  {100 * fraction:5.1f}%  {ms:7.3f}  {err:.1e}  {text}", flush=True)


if __name__ == "__main__":
    main()
