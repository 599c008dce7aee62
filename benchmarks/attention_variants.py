"""Time tilefn's attention forward under candidate Configs against SDPA, causal and not, d64 and d128.

    python benchmarks/attention_variants.py [--dims 64,128] [--only default,tma] [--shape 4,32,4096]

One process: for each head dim and each kernel (attention; causal_attention and its two-loop form
causal_attention_split, which masks only the diagonal band), the default Config and knob variants
of it (the previous default's K-only TMA, TMA for every access (the store too), stages, key tile 64, 4 warps, persistent pid) are
checked against float32 attention (its largest error at most 1.5x SDPA's own: bench.py's
tolerances against SDPA refused key tiles of 64 for one bf16 step in 50 of 67M causal outputs, whose
error was SDPA's) and timed with do_bench. A variant that fails to compile or disagrees prints "-" and one line on stderr.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import attrs
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import attention as examples  # noqa: E402
from bench import bench, one_line  # noqa: E402

KERNELS = (("attention", False), ("causal_attention", True), ("causal_attention_split", True))


def assert_as_close_as_sdpa(out, exact, sdpa_out) -> None:
    """`out`'s largest difference from float32 attention `exact` is at most 1.5x SDPA's (`sdpa_out`, bf16)."""
    err = (out.float() - exact).abs().max().item()
    sdpa = (sdpa_out.float() - exact).abs().max().item()
    assert err <= 1.5 * sdpa, f"largest error {err:.2e} against float32 attention, SDPA's {sdpa:.2e}"


def _key_tiles(config, size):
    """`config` with every key-loop block (all but the [head, rows] pair) set to `size`."""
    return attrs.evolve(config, block_sizes=list(config.block_sizes[:2]) + [size] * (len(config.block_sizes) - 2))


def _loops(config):
    return len(config.block_sizes) - 2


def _keys_only(config):
    """The default before chained products took descriptors: only K (each loop's first load) through TMA."""
    n = len(config.indexing)
    return attrs.evolve(config, indexing=["tensor_descriptor" if i % 2 and i < n - 1 else "pointer" for i in range(n)])


# name -> the Config made from the default one
VARIANTS = {
    "default": lambda c: c,
    "k_tma_only": _keys_only,
    "tma": lambda c: attrs.evolve(c, indexing="tensor_descriptor"),
    "tma_s2": lambda c: attrs.evolve(c, indexing="tensor_descriptor", num_stages=2),
    "tma_s4": lambda c: attrs.evolve(c, indexing="tensor_descriptor", num_stages=4),
    "tma_bn64": lambda c: _key_tiles(attrs.evolve(c, indexing="tensor_descriptor"), 64),
    "tma_w4_bn64": lambda c: _key_tiles(attrs.evolve(c, indexing="tensor_descriptor", num_warps=4), 64),
    "tma_w4_bn64_s2": lambda c: _key_tiles(attrs.evolve(c, indexing="tensor_descriptor", num_warps=4,
                                                        num_stages=2), 64),
    "w8_bn128_s3_ptr": lambda c: _key_tiles(attrs.evolve(c, indexing="pointer", num_warps=8, num_stages=3), 128),
    "tma_persistent": lambda c: attrs.evolve(c, indexing="tensor_descriptor", pid_type="persistent_interleaved"),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dims", default="64,128")
    parser.add_argument("--only", default="", help="comma-separated variant names")
    parser.add_argument("--shape", default="4,32,4096", help="batch,heads,seq")
    args = parser.parse_args()
    batch, heads, seq = map(int, args.shape.split(","))
    names = args.only.split(",") if args.only else list(VARIANTS)
    print(f"{'d':>4} {'kernel':<24} {'variant':<16} {'ms':>8} {'TFLOP/s':>8} {'x SDPA':>7}  config")
    for dim in map(int, args.dims.split(",")):
        torch.manual_seed(0)
        qkv = tuple(torch.randn(batch, heads, seq, dim, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        for causal in (False, True):
            flops = 4 * batch * heads * seq * seq * dim / (2 if causal else 1)
            ref = F.scaled_dot_product_attention(*qkv, is_causal=causal)
            exact = F.scaled_dot_product_attention(*(t.float() for t in qkv), is_causal=causal)
            sdpa = bench(lambda *a: F.scaled_dot_product_attention(*a, is_causal=causal), qkv)
            print(f"{dim:>4} {'sdpa':<24} {'causal' if causal else '-':<16} {sdpa:8.4f} {flops / sdpa / 1e9:8.1f}")
            for kernel_name, kernel_causal in KERNELS:
                if kernel_causal != causal:
                    continue
                kernel = getattr(examples, kernel_name)
                default = kernel.lower(*qkv).config
                for name in names:
                    config = VARIANTS[name](default)
                    try:
                        run = kernel.lower(*qkv, config=config).compile()
                        assert_as_close_as_sdpa(run(*qkv), exact, ref)
                        ms = bench(run, qkv)
                    except Exception as exc:  # noqa: BLE001 (a failed variant is reported, not fatal)
                        print(f"{dim} {kernel_name} {name}: {one_line(exc)}", file=sys.stderr)
                        print(f"{dim:>4} {kernel_name:<24} {name:<16} {'-':>8}")
                        continue
                    print(f"{dim:>4} {kernel_name:<24} {name:<16} {ms:8.4f} {flops / ms / 1e9:8.1f} "
                          f"{sdpa / ms:7.2f}  {config}", flush=True)


if __name__ == "__main__":
    main()
