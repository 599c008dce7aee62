"""backward.py's backward-alone figures in interleaved rounds, each kernel in a fresh process.

    python benchmarks/backward_rounds.py [--only cross_entropy,layer_norm] [--rounds 3]

backward.py times every variant once, one after the other, in one long process; its layer_norm and
cross-entropy rows have read a forward+backward faster than the backward alone (not a steady state).
Here each kernel runs in its own process, and each round times, in turn, tilefn's backward from the
residuals (`tfn.vjp_split`), its recomputing backward (`tfn.vjp`), torch.compile's and Liger's
backward (do_bench medians, default Configs; gradients checked once against float32 autograd).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent)]

import backward as suite  # noqa: E402  (benchmarks/backward.py)
import tilefn as tfn  # noqa: E402


def variants(name, kernel, args, positions, grad, want):
    """name -> a thunk running one backward, each checked once."""
    fwd, split = tfn.vjp_split(kernel)
    saved = fwd(*args)[1]
    recompute = tfn.vjp(kernel)
    calls = {"residuals": lambda: split(*args, saved, grad), "recompute": lambda: recompute(*args, grad)}
    for variant, call in list(calls.items()):
        got = call()
        if not suite.worst_error([got[i] for i in positions], want) <= 5e-2:
            raise ValueError(f"{name} {variant}: gradient off")
    peers = {"compile": torch.compile(suite.eager_references()[name])}
    try:
        peers["liger"] = suite.liger_peers()[name]
    except Exception as exc:  # noqa: BLE001 (Liger missing: the others still run)
        print(f"liger unavailable: {exc}", file=sys.stderr)
    for peer, fn in peers.items():
        calls[peer] = suite.autograd_step(fn, args, positions, grad)[0]
        if not suite.worst_error(calls[peer](), want) <= 5e-2:
            raise ValueError(f"{name} {peer}: gradient off")
    return calls, len(saved)


def child(name: str, rounds: int) -> None:
    case = next(c for c in suite.cases() if c[0] == name)
    _, kernel, args, positions, _ = case
    torch.manual_seed(1)
    reference = suite.eager_references()[name]
    grad = torch.randn_like(reference(*args))
    want = suite.oracle_grads(reference, args, positions, grad)
    calls, residuals = variants(name, kernel, args, positions, grad, want)
    for round_ in range(rounds):
        times = {variant: suite.bench(call) for variant, call in calls.items()}
        best_peer = min(times.get("compile", float("inf")), times.get("liger", float("inf")))
        print(f"{name:<14} round {round_}: " + "  ".join(f"{v} {t:.3f}" for v, t in times.items())
              + f"  | residuals ({residuals}) vs best peer {best_peer / times['residuals']:.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="cross_entropy,layer_norm,softmax,rms_norm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        return child(opts.child, opts.rounds)
    for name in opts.only.split(","):
        subprocess.run([sys.executable, __file__, "--child", name, "--rounds", str(opts.rounds)], check=False)


if __name__ == "__main__":
    main()
