"""Attention backward: tilefn's derived backward (`tfn.vjp` of examples/attention.py's attention, or of its
causal_attention) against SDPA's backward (`scaled_dot_product_attention(...)` then autograd), one line each.

    python benchmarks/attention_backward.py [--shape 4 32 4096 128] [--causal] [--config "Config(...)"] [--cpu]

Prints tilefn bwd ms, SDPA bwd ms and the ratio (tilefn / SDPA; the issue's goal is <= 1.5). The tilefn time
is the whole derived backward: zero-filled float32 gradient buffers, the one backward kernel (the forward's
max and sums recomputed per row tile, dK/dV by atomics or `vjp_reduction="partials"`) and the casts back.
Both sides are first checked against SDPA's gradients. `--cpu`: a tiny float32 run on CPU under Triton's
interpreter (that the script runs; its times mean nothing).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import tilefn as tfn  # noqa: E402
from attention import attention, causal_attention, make_inputs  # noqa: E402


def sdpa_backward(q, k, v, grad, causal):
    """SDPA's gradients of q, k, v (its forward is run once outside the timed call)."""
    leaves = [t.detach().requires_grad_(True) for t in (q, k, v)]
    out = torch.nn.functional.scaled_dot_product_attention(*leaves, is_causal=causal)
    return lambda: torch.autograd.grad(out, leaves, grad, retain_graph=True)


def check(got, want, dtype) -> None:
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-3
    for name, g, w in zip("qkv", got, want):
        scale = w.float().abs().max().item() + 1e-6
        err = (g.float() - w.float()).abs().max().item() / scale
        if err > tol:
            raise SystemExit(f"d{name}: tilefn's gradient is off by {err:.3g} of its largest value")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=4, default=None, metavar=("B", "H", "S", "D"),
                        help="default: examples/attention.py's large size, 4 32 4096 128")
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--config", default=None, help="a tfn.Config(...) expression for the backward kernel")
    parser.add_argument("--cpu", action="store_true", help="a tiny float32 run on CPU (Triton's interpreter)")
    args = parser.parse_args()
    device, dtype = ("cpu", torch.float32) if args.cpu else ("cuda", torch.bfloat16)
    torch.manual_seed(0)
    q, k, v = make_inputs(device, dtype, (1, 2, 40, 16) if args.cpu else args.shape or "large")
    grad = torch.randn_like(q)
    shape = tuple(q.shape)
    bwd = tfn.vjp(causal_attention if args.causal else attention)
    if args.config:
        bwd.config = eval(args.config, {"Config": tfn.Config})  # (before its first call: nothing compiled yet)
    ours = lambda: bwd(q, k, v, grad)  # noqa: E731
    theirs = sdpa_backward(q, k, v, grad, args.causal)
    check(ours(), theirs(), dtype)
    if args.cpu:
        print(f"attention backward {shape} float32 on CPU: tilefn's gradients match SDPA's")
        return
    from triton.testing import do_bench

    ours_ms, theirs_ms = do_bench(ours), do_bench(theirs)
    label = f"attention backward b{shape[0]} h{shape[1]} s{shape[2]} d{shape[3]} bf16{' causal' if args.causal else ''}"
    print(f"{label}: tilefn {ours_ms:.3f} ms, SDPA {theirs_ms:.3f} ms, ratio {ours_ms / theirs_ms:.2f}")


if __name__ == "__main__":
    main()
