"""Derived backward kernels (`tfn.vjp` of the examples' forward kernels) against the peers' backward passes.

    python benchmarks/backward.py [--only softmax,geglu] [--no-tune] [--no-compile] [--no-liger]
                                  [--configs '[{"vjp_rows_per_program": 64}, {"block_sizes": [2]}]']

For softmax, layer_norm, rms_norm, cross_entropy and geglu at bench.py's sizes (bf16, H200), one line each:
- `bwd`: the backward alone. tilefn: `bwd(*args, residuals, grad)` of `fwd, bwd = tfn.vjp_split(kernel)`
  (the residuals, per-row statistics, saved by `fwd` once outside the timed call, as the peers' forward
  runs) on its default Config and quick-tuned (`tfn.tune(bwd, effort="quick")`; the tuning time is
  printed). Peers (eager, torch.compile, Liger): their forward runs once outside the timed call, then
  `torch.autograd.grad(out, inputs, grad)`.
- `fwd+bwd`: one training step's kernels: tilefn's saving forward then its backward from residuals; the
  peers' forward then autograd. Liger's cross-entropy computes its gradient in the forward, so only this
  column compares it fairly.
- a second line, `recompute`: the same for `tfn.vjp(kernel)(*args, grad)`, which recomputes the row
  statistics (and the plain forward kernel before it in `fwd+bwd`).
Every gradient is first checked against eager autograd on float32 copies of the inputs.
`--configs`: a JSON list of backward Configs (tunables by name, or `block_sizes`, `num_warps`), each timed
(bwd alone, from residuals and recomputing) after the default, one line per Config.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import tilefn as tfn  # noqa: E402
import cross_entropy  # noqa: E402
import geglu  # noqa: E402
import layer_norm  # noqa: E402
import rms_norm  # noqa: E402
import softmax  # noqa: E402

EXAMPLES = {m.__name__: m for m in (softmax, layer_norm, rms_norm, cross_entropy, geglu)}  # name -> its module

BF16 = torch.bfloat16


def eager_references():
    """name -> the example's own eager PyTorch (the peers' forward and the gradient oracle)."""
    return {name: EXAMPLES[name].reference for name in EXAMPLES}


def liger_peers():
    """bench.py's Liger peers (same arguments, same math), and Liger's geglu."""
    import bench  # benchmarks/bench.py (imports triton)
    from liger_kernel.transformers.functional import liger_geglu
    return {**bench.liger_peers(), "geglu": liger_geglu}


def cases(device="cuda", scale=1):
    """(name, tilefn kernel, inputs, positions with a gradient, backward bytes); sizes divided by `scale`."""
    def randn(*shape):
        return torch.randn(*(s // scale for s in shape), device=device, dtype=BF16)

    x_soft = randn(4096, 16384)
    x_norm, w_norm, b_norm = randn(16384, 8192), randn(8192), randn(8192)
    logits = randn(8192, 32768)
    labels = torch.randint(0, 32768 // scale, (8192 // scale,), device=device)
    a, b = randn(8192, 8192), randn(8192, 8192)
    size = lambda t: t.numel() * t.element_size()  # noqa: E731
    return [
        ("softmax", softmax.softmax, (x_soft,), (0,), 3 * size(x_soft)),               # x, dy in; dx out
        ("layer_norm", layer_norm.layer_norm, (x_norm, w_norm, b_norm), (0, 1, 2), 3 * size(x_norm)),
        ("rms_norm", rms_norm.rms_norm, (x_norm, w_norm), (0, 1), 3 * size(x_norm)),
        ("cross_entropy", cross_entropy.cross_entropy, (logits, labels), (0,), 2 * size(logits)),  # logits in; dlogits out
        ("geglu", geglu.geglu, (a, b), (0, 1), 5 * size(a)),                          # a, b, dy in; da, db out
    ]


def bench(fn):
    from triton.testing import do_bench
    return do_bench(fn, warmup=25, rep=100, return_mode="median")


def autograd_step(fn, args, positions, grad):
    """(backward alone, forward+backward) of `fn` through torch autograd, as two thunks."""
    # (each peer gets copies: Liger's geglu backward writes its gradients into its inputs' storage)
    leaves = [t.detach().clone().requires_grad_(True) if i in positions else t for i, t in enumerate(args)]
    wrt = [leaves[i] for i in positions]
    out = fn(*leaves)
    backward = lambda: torch.autograd.grad(out, wrt, grad, retain_graph=True)  # noqa: E731
    step = lambda: torch.autograd.grad(fn(*leaves), wrt, grad)  # noqa: E731
    return backward, step


def worst_error(got, want):
    """Largest |got - want| over gradients, relative to each oracle gradient's largest value."""
    return max(((g.float() - w).abs().max() / w.abs().max().clamp_min(1e-12)).item() for g, w in zip(got, want))


def oracle_grads(reference, args, positions, grad):
    floats = [t.float() if t.is_floating_point() else t for t in args]
    leaves = [t.requires_grad_(True) if i in positions else t for i, t in enumerate(floats)]
    ref = lambda *xs: reference(*xs).float()  # noqa: E731
    return torch.autograd.grad(ref(*leaves), [leaves[i] for i in positions], grad.float())


def peer_times(name, fn, args, positions, grad, want):
    """(bwd ms, fwd+bwd ms) of one peer; NaNs (and a line on stderr) if it fails or is off."""
    try:
        backward, step = autograd_step(fn, args, positions, grad)
        err = worst_error(backward(), want)
        if not err <= 5e-2:  # (NaN too)
            raise ValueError(f"gradient off by {err:.3g}")
        return bench(backward), bench(step)
    except Exception as exc:  # one failing peer must not hide the others
        print(f"{name}: peer failed: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}", file=sys.stderr)
        return float("nan"), float("nan")


def tilefn_times(kernel, args, positions, grad, want, tune, split=False):
    """(bwd ms, fwd+bwd ms, tuning seconds or NaN, error, residuals) of the derived backward: recomputing
    the forward's row values (`tfn.vjp`), or, `split`, loading the residuals `tfn.vjp_split`'s forward
    saved (run once outside the timed backward, as the peers' forward; residuals: how many, 0 = no split)."""
    fwd, bwd = tfn.vjp_split(kernel) if split else (None, tfn.vjp(kernel))
    saved = (fwd(*args)[1],) if split else ()
    tuning_s = float("nan")
    if tune:
        bwd = tfn.tune(bwd, effort="quick", verbose=False)
        start = time.perf_counter()
        bwd(*args, *saved, grad)
        torch.cuda.synchronize()
        tuning_s = time.perf_counter() - start
    got = bwd(*args, *saved, grad)
    err = worst_error([got[i] for i in positions], want)
    if not err <= 5e-2:  # (NaN too)
        nans = [int(got[i].isnan().sum()) for i in positions]
        raise ValueError(f"tilefn's gradient is off by {err:.3g} of the oracle's largest value (NaNs: {nans})")
    step = (lambda: bwd(*args, fwd(*args)[1], grad)) if split else (lambda: (kernel(*args), bwd(*args, grad)))
    return bench(lambda: bwd(*args, *saved, grad)), bench(step), tuning_s, err, len(saved[0]) if split else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--no-tune", action="store_true", help="the default Config only")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--no-liger", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="sizes / 256 on CPU (Triton's interpreter): checks only")
    parser.add_argument("--configs", default="[]", help="a JSON list of backward Configs to time besides the default")
    opts = parser.parse_args()
    if opts.cpu:
        return check_on_cpu()
    import triton
    print(torch.cuda.get_device_name(), "torch", torch.__version__, "triton", triton.__version__)
    references = eager_references()
    peers = {"eager": references}
    if not opts.no_compile:
        peers["compile"] = {name: torch.compile(fn) for name, fn in references.items()}
    if not opts.no_liger:
        try:
            peers["liger"] = liger_peers()
        except Exception as exc:
            print(f"liger unavailable: {type(exc).__name__}: {exc}", file=sys.stderr)
    wanted = set(filter(None, opts.only.split(",")))
    rows = []
    for name, kernel, args, positions, nbytes in cases():
        if wanted and name not in wanted:
            continue
        torch.manual_seed(1)
        grad = torch.randn_like(references[name](*args))
        want = oracle_grads(references[name], args, positions, grad)
        times = {peer: peer_times(f"{name} {peer}", table[name], args, positions, grad, want)
                 for peer, table in peers.items() if name in table}
        try:
            timed = lambda tune, split: tilefn_times(kernel, args, positions, grad, want, tune, split)  # noqa: E731
            runs = [(timed(False, split), None if opts.no_tune else timed(True, split)) for split in (True, False)]
            (default, tuned), recompute = [(d, t or d) for d, t in runs]
        except Exception as exc:  # report and go on
            print(f"{name:<14} FAILED: {type(exc).__name__}: {' '.join(str(exc).split())[:150]}", flush=True)
            continue
        rows.append((name, default, tuned, times, nbytes, recompute))
        print_row(*rows[-1])
        for given in json.loads(opts.configs):
            print_variant(name, given, kernel, args, positions, grad, want, times)
    print("times in ms (median, triton.testing.do_bench); GB/s of the tuned backward over its minimum traffic; "
          "vs best = best peer's time / tilefn quick-tuned time (bwd, then fwd+bwd); '-' = peer not run")


def as_config(given: dict) -> tfn.Config:
    """A Config from its JSON form: Config fields by name (`block_sizes`, `num_warps`, `range_num_stages`,
    ...), any other key a tunable."""
    names = {a.name for a in tfn.Config.__attrs_attrs__} - {"tunables"}
    fields = {k: v for k, v in given.items() if k in names}
    return tfn.Config(**fields, tunables={k: v for k, v in given.items() if k not in fields})


def print_variant(name, given, kernel, args, positions, grad, want, times):
    """One line: the backward from residuals and the recomputing one under the Config `given` (bwd alone)
    against the best peer's bwd."""
    config = as_config(given)
    fwd, split = tfn.vjp_split(kernel, config=config)
    saved = fwd(*args)[1]
    line = []
    for label, bwd, extra in (("bwd", split, (saved,)), ("recompute", tfn.vjp(kernel, config=config), ())):
        try:
            got = bwd(*args, *extra, grad)
            err = worst_error([got[i] for i in positions], want)
            ms = bench(lambda: bwd(*args, *extra, grad)) if err <= 5e-2 else float("nan")
        except Exception as exc:  # report and go on
            print(f"{name:<14} {json.dumps(given)} {label} FAILED: {type(exc).__name__}: "
                  f"{' '.join(str(exc).split())[:150]}")
            return
        line.append((label, ms, err))
    peer, best = min(((p, t[0]) for p, t in times.items() if t[0] == t[0]), key=lambda kv: kv[1],
                     default=("-", float("nan")))
    cells = [f"{label} {ms:.3f} ms, vs best bwd {best / ms:.2f}x {peer}, err {err:.1e}" for label, ms, err in line]
    print(f"{name:<14} {json.dumps(given):<52} " + " | ".join(cells), flush=True)


def check_on_cpu():
    """Each derived backward's gradients against the oracle at small sizes, without timing."""
    references = eager_references()
    for name, kernel, args, positions, _ in cases("cpu", 256):
        grad = torch.randn_like(references[name](*args))
        want = oracle_grads(references[name], args, positions, grad)
        got = tfn.vjp(kernel)(*args, grad)
        err = worst_error([got[i] for i in positions], want)
        fwd, bwd = tfn.vjp_split(kernel)
        saved = fwd(*args)[1]
        split = worst_error([g for i, g in enumerate(bwd(*args, saved, grad)) if i in positions], want)
        print(f"{name:<14} {tuple(args[0].shape)} bf16 on CPU: worst gradient error {err:.1e}, from "
              f"{len(saved)} residuals {split:.1e}" + ("" if max(err, split) <= 5e-2 else "  OFF"))  # (NaN: OFF)


def print_row(name, default, tuned, times, nbytes, recompute):
    def best(column):
        ok = {peer: t[column] for peer, t in times.items() if t[column] == t[column]}
        return min(ok.items(), key=lambda kv: kv[1]) if ok else ("-", float("nan"))
    (bwd_peer, bwd_ms), (step_peer, step_ms) = best(0), best(1)
    peer_cols = " ".join(f"{p}={t[0]:.3f}/{t[1]:.3f}" for p, t in times.items())
    (again, quick), saved = recompute, f"{tuned[4]} residuals" if tuned[4] else "no residuals: recomputes"
    print(f"{name:<14} bwd default {default[0]:.3f} quick {tuned[0]:.3f} (tuned in {tuned[2]:.1f} s) "
          f"fwd+bwd {tuned[1]:.3f} ({saved}) | {nbytes / tuned[0] / 1e6:5.0f} GB/s | {peer_cols} | vs best bwd "
          f"{bwd_ms / tuned[0]:.2f}x {bwd_peer}, fwd+bwd {step_ms / tuned[1]:.2f}x {step_peer} | err {tuned[3]:.1e}\n"
          f"{'':<14} recompute: bwd default {again[0]:.3f} quick {quick[0]:.3f} fwd+bwd {quick[1]:.3f} | "
          f"vs best bwd {bwd_ms / quick[0]:.2f}x, fwd+bwd {step_ms / quick[1]:.2f}x | err {quick[3]:.1e}", flush=True)


if __name__ == "__main__":
    main()
