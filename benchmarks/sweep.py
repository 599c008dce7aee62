"""Time a few hand-picked Configs per memory-bound kernel against the default (to set the heuristics).

    python benchmarks/sweep.py [--only softmax,layer_norm] [--top 5]
"""
from __future__ import annotations

import sys
from pathlib import Path

import attrs
import torch
from triton.testing import do_bench

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import tilefn as tfn  # noqa: E402
from bench import cases  # noqa: E402

SWEPT = {"softmax", "layer_norm", "rms_norm", "cross_entropy", "cross_entropy_128k", "sum_rows", "long_sum",
         "softmax_two_pass", "softmax_backward", "welford", "jagged_sum"}


def variants(default: tfn.Config, looped: bool):
    """Neighbours of the default: warps x the innermost grid block x sequential block sizes,
    and (when the kernel reduces whole rows) looped reductions over chunks of the row."""
    yield default
    if looped:
        for chunk in (1024, 2048, 4096, 8192, 16384):  # (sm_90 SASS of cross_entropy's one-pass loop, 8192x32768:
            for warps in (4, 8, 16, 32):  # 11.8 instructions an element at 8192 x 16 warps, 9.1 at 8192 x 8, 9.4 at 16384 x 16)
                yield tfn.Config(block_sizes=default.block_sizes, reduction_loops=[chunk], num_warps=warps, num_stages=1)
    sizes = list(default.block_sizes)
    for warps in (4, 8, 16, 32):
        for scale in (0.5, 1, 2, 4):
            new = [max(1, int(s * scale)) if s >= 1 else s for s in sizes]
            if new == sizes and warps == default.num_warps:
                continue
            yield tfn.Config(block_sizes=new, num_warps=warps, num_stages=1)
    yield from _streaming(default)


def _whole_rows(program, default: tfn.Config):
    """The default with every sequential (inner-loop) block as wide as its extent, up to 16384, and one row
    a program: a loop walked once, so sibling loops over the same row read it from L1 the second time."""
    from tilefn.trace.queries import grid_blocks, next_power_of_2

    grid = set(grid_blocks(program))
    sizes = list(default.block_sizes)
    for block in program.blocks:
        if block.id not in grid and block.extent and block.extent <= 16384 and not block.fixed:
            sizes[block.id] = next_power_of_2(block.extent)
        elif block.id in grid and not block.fixed:
            sizes[block.id] = 1
    if sizes != list(default.block_sizes):
        for warps in (8, 16, 32):
            yield attrs.evolve(default, block_sizes=sizes, num_warps=warps)


def _streaming(default: tfn.Config):
    """The default with each memory knob changed: a persistent grid whose next rows' loads are pipelined
    behind this row's work (num_stages), eviction hints (the first load streamed, the rest kept), and the
    other indexing forms."""
    for stages in (2, 3, 4):  # inner loops' loads prefetched (cp.async) that many iterations ahead
        yield attrs.evolve(default, num_stages=stages)
    for pid_type in ("persistent_blocked", "persistent_interleaved"):
        for stages in (1, 2, 3):
            for warps in {default.num_warps, max(4, default.num_warps // 2)}:
                yield attrs.evolve(default, pid_type=pid_type, num_stages=stages, num_warps=warps)
    for policies in (("evict_first",), ("", "evict_last", "evict_last"), ("evict_first", "evict_last", "evict_last")):
        yield attrs.evolve(default, load_eviction_policies=policies)
    for indexing in ("block_ptr", "tensor_descriptor"):
        yield attrs.evolve(default, indexing=indexing)


def main():
    import argparse
    import importlib

    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="")
    parser.add_argument("--top", type=int, default=1, help="print this many of the fastest configs")
    opts = parser.parse_args()
    only = set(filter(None, opts.only.split(",")))
    print(f"{'kernel':<18} {'default ms':>10} {'best ms':>8}  best config")
    for name, module_name, attr, args, amount, unit in cases():
        if name not in SWEPT or (only and name not in only):
            continue
        kernel = getattr(importlib.import_module(module_name), attr)
        from tilefn.lower.rewrites.reduction_loops import reduction_extents

        lowered = kernel.lower(*args)
        default = lowered.config
        looped = bool(reduction_extents(tfn.make_ir(kernel)(*args)))
        timings = []
        expected = kernel(*args)
        flat = kernel.flat(args, {})  # (the compiled host function takes every parameter, defaults too)
        program = tfn.make_ir(kernel)(*args)
        for config in [*variants(default, looped), *_whole_rows(program, default)]:
            try:
                run = kernel.lower(*args, config=config).compile()
                torch.testing.assert_close(run(*flat), expected, atol=2e-2, rtol=2e-2)
                timings.append((do_bench(lambda: run(*flat), warmup=10, rep=40, return_mode="median"), config))
            except Exception as exc:  # a config the compiler rejects, or one giving another answer, is skipped
                print(f"  skip {config}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
        base = timings[0][0]
        for ms, config in sorted(timings, key=lambda t: t[0])[:opts.top]:
            print(f"{name:<18} {base:10.3f} {ms:8.3f}  {config}  ({amount / ms / 1e6:.0f} GB/s)")


if __name__ == "__main__":
    main()
