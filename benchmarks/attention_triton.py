"""A hand-written Triton flash-attention forward (FA2-style, written here) beside SDPA and tilefn's.

    python benchmarks/attention_triton.py [--shape 4,32,4096] [--dims 64,128] [--ws] [--only 'bn64 w4 s2,w8 s3']

Question it answers: is attention below SDPA because of tilefn's lowering, or is that where Triton
3.x on sm_90 stands? The kernel is the textbook one: a program per (query tile, batch*head), Q held
in registers, keys and values walked in tiles (through tensor descriptors, or pointers), exp2 with
log2(e) folded into the scale, the running max / sum rescaled per tile, causal tiles skipped by the
loop bound and only the diagonal tile masked. Each Config is checked against float32 attention (at most
1.5x SDPA's largest error, attention_variants.py) and timed with do_bench; the table prints ms, TFLOP/s and x SDPA, the best Config last.
Also prints each kernel's largest error against float32 attention (SDPA's too), for the causal rows.
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import attention as examples  # noqa: E402
from attention_variants import assert_as_close_as_sdpa  # noqa: E402
from bench import bench, one_line  # noqa: E402


@triton.jit
def _tile(acc, l_i, m_i, q, k_at, v_at, lo, hi, offs_m, scale, BN: tl.constexpr, MASKED: tl.constexpr,
          TMA: tl.constexpr, STAGES: tl.constexpr, K, V, k_base, v_base, D: tl.constexpr, WS: tl.constexpr):
    """Keys lo..hi (multiples of BN) into the running (acc, l_i, m_i)."""
    offs_n = tl.arange(0, BN)
    offs_d = tl.arange(0, D)
    for start in tl.range(lo, hi, BN, num_stages=STAGES, warp_specialize=WS):
        if TMA:
            k = k_at.load([k_base + start, 0])
        else:
            k = tl.load(K + (k_base + start + offs_n)[:, None] * D + offs_d[None, :])
        s = tl.dot(q, tl.trans(k))
        if MASKED:
            keep = offs_m[:, None] >= (start + offs_n)[None, :]
            s = tl.where(keep, s, -float("inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1) * scale)
        p = tl.math.exp2(s * scale - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        if TMA:
            v = v_at.load([v_base + start, 0])
        else:
            v = tl.load(V + (v_base + start + offs_n)[:, None] * D + offs_d[None, :])
        acc = tl.dot(p.to(v.dtype), v, acc)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def flash_forward(Q, K, V, O, scale, S: tl.constexpr, D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                  CAUSAL: tl.constexpr, TMA: tl.constexpr, STAGES: tl.constexpr, ROWS: tl.constexpr,
                  WS: tl.constexpr):
    """O[bh, tile] = softmax(Q K^T / sqrt(d)) V for one query tile of one (batch, head); `scale` has log2 e."""
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    base = bh * S
    offs_m = pid_m * BM + tl.arange(0, BM)
    offs_d = tl.arange(0, D)
    if TMA:
        q_at = tl.make_tensor_descriptor(Q, [ROWS, D], [D, 1], [BM, D])
        k_at = tl.make_tensor_descriptor(K, [ROWS, D], [D, 1], [BN, D])
        v_at = tl.make_tensor_descriptor(V, [ROWS, D], [D, 1], [BN, D])
        q = q_at.load([base + pid_m * BM, 0])
    else:
        k_at = Q
        v_at = Q
        q = tl.load(Q + (base + offs_m)[:, None] * D + offs_d[None, :])
    acc = tl.zeros([BM, D], dtype=tl.float32)
    l_i = tl.zeros([BM], dtype=tl.float32)
    m_i = tl.full([BM], -float("inf"), dtype=tl.float32)
    if CAUSAL:
        acc, l_i, m_i = _tile(acc, l_i, m_i, q, k_at, v_at, 0, pid_m * BM, offs_m, scale, BN, False, TMA, STAGES,
                              K, V, base, base, D, WS)
        acc, l_i, m_i = _tile(acc, l_i, m_i, q, k_at, v_at, pid_m * BM, (pid_m + 1) * BM, offs_m, scale, BN, True,
                              TMA, STAGES, K, V, base, base, D, WS)
    else:
        acc, l_i, m_i = _tile(acc, l_i, m_i, q, k_at, v_at, 0, S, offs_m, scale, BN, False, TMA, STAGES,
                              K, V, base, base, D, WS)
    out = (acc / l_i[:, None]).to(O.dtype.element_ty)
    tl.store(O + (base + offs_m)[:, None] * D + offs_d[None, :], out)


def flash(q, k, v, causal, bm, bn, warps, stages, tma, ws=False):
    b, h, s, d = q.shape
    out = torch.empty_like(q)
    scale = 1.0 / math.sqrt(d) * 1.4426950408889634
    grid = (s // bm, b * h)
    flash_forward[grid](q, k, v, out, scale, S=s, D=d, BM=bm, BN=bn, CAUSAL=causal, TMA=tma, STAGES=stages,
                        ROWS=b * h * s, WS=ws, num_warps=warps, num_stages=stages)
    return out


def configs(causal, ws: bool):
    """(bm, bn, warps, stages, tma, warp_specialize): the usual sm_90 candidates (BN <= BM so a causal
    diagonal is one tile); with `ws`, each also with Triton's warp-specialised key loop."""
    for bm, bn, warps, stages, tma in itertools.product((128,), (64, 128), (4, 8), (2, 3, 4), (True, False)):
        if bn <= bm and not (warps == 4 and bn == 128):
            yield from ((bm, bn, warps, stages, tma, w) for w in ((False, True) if ws else (False,)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="4,32,4096", help="batch,heads,seq")
    parser.add_argument("--dims", default="128,64")
    parser.add_argument("--ws", action="store_true", help="also each Config with warp_specialize=True")
    parser.add_argument("--only", default="", help="comma-separated substrings: time the Configs whose name has one")
    args = parser.parse_args()
    triton.set_allocator(lambda size, align, stream: torch.empty(size, dtype=torch.int8, device="cuda"))
    batch, heads, seq = map(int, args.shape.split(","))
    print(f"{'d':>4} {'causal':>6} {'kernel':<34} {'ms':>8} {'TFLOP/s':>8} {'x SDPA':>7} {'err':>9}")
    for dim, causal in itertools.product(map(int, args.dims.split(",")), (False, True)):
        torch.manual_seed(0)
        qkv = tuple(torch.randn(batch, heads, seq, dim, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        flops = 4 * batch * heads * seq * seq * dim / (2 if causal else 1)
        exact = F.scaled_dot_product_attention(*(t.float() for t in qkv), is_causal=causal)
        ref = F.scaled_dot_product_attention(*qkv, is_causal=causal)
        sdpa = bench(lambda *a: F.scaled_dot_product_attention(*a, is_causal=causal), qkv)

        def row(name, ms, out):
            err = (out.float() - exact).abs().max().item()
            print(f"{dim:>4} {causal!s:>6} {name:<34} {ms:8.4f} {flops / ms / 1e9:8.1f} {sdpa / ms:7.2f} {err:9.2e}",
                  flush=True)

        row("sdpa", sdpa, ref)
        kernel = examples.causal_attention if causal else examples.attention
        try:
            run = kernel.lower(*qkv).compile()
            row("tilefn default", bench(run, qkv), run(*qkv))
        except Exception as exc:  # noqa: BLE001 (reported, the comparison goes on)
            print(f"tilefn default: {one_line(exc)}", file=sys.stderr)
        best = None
        for cfg in configs(causal, args.ws):
            name = "triton bm{} bn{} w{} s{} {}{}".format(*cfg[:4], "tma" if cfg[4] else "ptr", " ws" if cfg[5] else "")
            if args.only and not any(part in name for part in args.only.split(",")):
                continue
            try:
                out = flash(*qkv, causal, *cfg)
                assert_as_close_as_sdpa(out, exact, ref)
                ms = bench(lambda *a: flash(*a, causal, *cfg), qkv)
            except Exception as exc:  # noqa: BLE001
                print(f"{name}: {one_line(exc)}", file=sys.stderr)
                continue
            row(name, ms, out)
            best = min(best or (ms, name, out), (ms, name, out), key=lambda t: t[0])
        if best:
            row("BEST " + best[1], best[0], best[2])


if __name__ == "__main__":
    main()
