"""Time tfn.jit(bmm) at 64x512^3 bf16 under a few explicit Configs against torch.bmm (cuBLAS); print a table.

    python benchmarks/bmm_configs.py

pi / pb: pid_type persistent_interleaved / persistent_blocked; flat: persistent_flatten; ws:
persistent_warp_specialize; desc / ptr: tensor descriptors / pointers.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from triton.testing import do_bench

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import tilefn as tfn  # noqa: E402
from bmm import bmm  # noqa: E402

FLOPS = 2 * 64 * 512 ** 3


DESC = "tensor_descriptor"
FLAT = dict(pid_type="persistent_interleaved", indexing=DESC, persistent_flatten=True)


def config(blocks, warps=8, stages=3, **knobs):
    return tfn.Config(block_sizes=blocks, num_warps=warps, num_stages=stages, **knobs)


VARIANTS = {
    "default": None,
    "128x128x64 w8 s3 (the old default)": config([1, 128, 128, 64]),
    "128x128x64 w8 s3 desc": config([1, 128, 128, 64], indexing="tensor_descriptor"),
    "128x256x64 w8 s3": config([1, 128, 256, 64]),
    "128x256x64 w8 s3 desc": config([1, 128, 256, 64], indexing="tensor_descriptor"),
    "128x128x64 w4 s4": config([1, 128, 128, 64], 4, 4),
    "128x128x128 w8 s2": config([1, 128, 128, 128], 8, 2),
    "256x128x64 w8 s3": config([1, 256, 128, 64]),
    "64x128x64 w4 s4": config([1, 64, 128, 64], 4, 4),
    "128x128x64 w8 s4 block_ptr": config([1, 128, 128, 64], 8, 4, indexing="block_ptr"),
    "128x256x64 persistent_interleaved": config([1, 128, 256, 64], pid_type="persistent_interleaved"),
    # the persistent tile loop flattened with the k loop (Config.persistent_flatten): one pipelined loop
    "128x128x64 w8 s3 pi desc": config([1, 128, 128, 64], pid_type="persistent_interleaved", indexing=DESC),
    "128x128x64 w8 s3 pi desc flat": config([1, 128, 128, 64], **FLAT),
    "128x128x64 w8 s3 pb desc flat": config([1, 128, 128, 64], **{**FLAT, "pid_type": "persistent_blocked"}),
    "128x128x64 w8 s3 pi ptr flat": config([1, 128, 128, 64], **{**FLAT, "indexing": "pointer"}),
    "128x128x64 w8 s4 pi desc flat": config([1, 128, 128, 64], 8, 4, **FLAT),
    "128x128x64 w4 s4 pi desc flat": config([1, 128, 128, 64], 4, 4, **FLAT),
    "128x128x64 w8 s2 pi desc flat": config([1, 128, 128, 64], 8, 2, **FLAT),
    "128x256x64 w8 s3 pi desc": config([1, 128, 256, 64], pid_type="persistent_interleaved", indexing=DESC),
    "128x256x64 w8 s3 pi desc flat": config([1, 128, 256, 64], **FLAT),
    "128x256x64 w8 s3 pb desc flat": config([1, 128, 256, 64], **{**FLAT, "pid_type": "persistent_blocked"}),
    "128x256x64 w8 s2 pi desc flat": config([1, 128, 256, 64], 8, 2, **FLAT),
    "128x256x64 w8 s3 pi desc flat ws": config([1, 128, 256, 64], **FLAT, persistent_warp_specialize=True),
    "128x128x128 w8 s2 pi desc flat": config([1, 128, 128, 128], 8, 2, **FLAT),
    "128x128x64 w8 s3 pi desc flat ws": config([1, 128, 128, 64], **FLAT, persistent_warp_specialize=True),
}


def median_ms(fn) -> float:
    return do_bench(fn, warmup=25, rep=100, return_mode="median")


def main():
    x, y = (torch.randn(64, 512, 512, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    want = torch.bmm(x, y)
    rows = [("torch.bmm", median_ms(lambda: torch.bmm(x, y)))]
    print("default:", bmm.lower(x, y).config, flush=True)
    for name, cfg in VARIANTS.items():
        start = time.time()
        kernel = tfn.jit(bmm.fn, config=cfg) if cfg is not None else bmm
        try:
            torch.testing.assert_close(kernel(x, y), want, atol=1e-1, rtol=2e-2)
        except Exception as e:  # noqa: BLE001 (one failing variant should not end the table)
            print(name, "FAILED", type(e).__name__, str(e)[:300], flush=True)
            continue
        rows.append((name, median_ms(lambda: kernel(x, y))))
        print(name, f"compiled and checked in {time.time() - start:.1f}s", flush=True)
    print(f"{'variant':36s} {'ms':>8s} {'TFLOP/s':>8s} {'% cuBLAS':>8s}")
    for name, ms in rows:
        print(f"{name:36s} {ms:8.4f} {FLOPS / ms / 1e9:8.1f} {100 * rows[0][1] / ms:8.1f}")


if __name__ == "__main__":
    main()
