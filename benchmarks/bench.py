"""Time every example against its peers on the GPU; print one table.

    python benchmarks/bench.py [--only softmax,matmul] [--no-compile] [--no-liger] [--no-helion]

Each row: tilefn's time with the default heuristic Config (no tuning), the peers' times, the
achieved GB/s (memory-bound) or TFLOP/s (matmul), and tilefn's speed relative to the best peer.
The first rows are the ceilings measured in the same run: a device-to-device copy and cuBLAS.

Peers: torch eager (the example's `reference`, also the ground truth), torch.compile of it, and
for softmax, layer_norm, rms_norm and cross_entropy also Liger's kernels (liger-kernel) and
Helion kernels (benchmarks/helion_kernels.py, fixed configs; BENCH_HELION_TUNE=1 autotunes them
with effort "quick" instead). A peer that is not installed, fails, or disagrees with eager torch
shows "-" and one line on stderr says why. Every peer but eager is checked against eager first.
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

import torch
import triton
import triton.language as tl
from triton.testing import do_bench

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

BF16 = torch.bfloat16


def _randn(*shape, dtype=BF16):
    return torch.randn(*shape, device="cuda", dtype=dtype)


def _nbytes(*tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


# name -> (module, kernel attr, args builder, traffic in bytes or flops, "GB/s" | "TFLOP/s")
def cases():
    m, n = 4096, 16384
    rows, cols = 16384, 8192
    x_soft = _randn(m, n)
    x_norm, w_norm, b_norm = _randn(rows, cols), _randn(cols), _randn(cols)
    a_mm, b_mm = _randn(4096, 4096), _randn(4096, 4096)
    bias = _randn(4096)
    big = _randn(64 * 1024 * 1024)
    logits = _randn(8192, 32768)
    labels = torch.randint(0, 32768, (8192,), device="cuda")
    logits_128k = _randn(8192, 131072)
    labels_128k = torch.randint(0, 131072, (8192,), device="cuda")
    bmm_a, bmm_b = _randn(64, 512, 512), _randn(64, 512, 512)
    emb_w = _randn(65536, 1024)
    emb_i = torch.randint(0, 65536, (16384,), device="cuda")
    qkv = tuple(_randn(4, 32, 4096, 128) for _ in range(3))
    x_welford = _randn(4096, 65536)
    torch.manual_seed(0)
    jagged = importlib.import_module("jagged_sum").make_inputs("cuda", BF16, "large")
    return [
        ("add", "add", "add", (big, big.clone()), 3 * _nbytes(big), "GB/s"),
        ("exp", "exp", "exp", (big,), 2 * _nbytes(big), "GB/s"),
        ("sum_rows", "sum", "row_sum", (x_norm,), _nbytes(x_norm), "GB/s"),
        ("softmax", "softmax", "softmax", (x_soft,), 2 * _nbytes(x_soft), "GB/s"),
        ("softmax_decomposed", "softmax", "softmax_decomposed", (x_soft,), 2 * _nbytes(x_soft), "GB/s"),
        ("softmax_two_pass", "softmax", "softmax_two_pass", (x_soft,), 2 * _nbytes(x_soft), "GB/s"),
        ("layer_norm", "layer_norm", "layer_norm", (x_norm, w_norm, b_norm), 2 * _nbytes(x_norm), "GB/s"),
        ("rms_norm", "rms_norm", "rms_norm", (x_norm, w_norm), 2 * _nbytes(x_norm), "GB/s"),
        ("long_sum", "long_sum", "long_sum", (x_norm,), _nbytes(x_norm), "GB/s"),
        ("welford", "welford", "welford", (x_welford,), _nbytes(x_welford), "GB/s"),
        ("jagged_sum", "jagged_sum", "jagged_sum", jagged, _nbytes(jagged[0]), "GB/s"),
        ("cross_entropy", "cross_entropy", "cross_entropy", (logits, labels), _nbytes(logits), "GB/s"),
        ("cross_entropy_128k", "cross_entropy", "cross_entropy", (logits_128k, labels_128k), _nbytes(logits_128k), "GB/s"),
        ("embedding", "embedding", "embedding", (emb_i, emb_w), 2 * 16384 * 1024 * 2, "GB/s"),
        ("softmax_backward", "softmax_backward", "softmax_backward", (x_soft, x_soft.clone()), 3 * _nbytes(x_soft), "GB/s"),
        ("matmul", "matmul", "matmul", (a_mm, b_mm), 2 * 4096 ** 3, "TFLOP/s"),
        ("linear", "linear", "linear", (a_mm, b_mm), 2 * 4096 ** 3, "TFLOP/s"),
        ("matmul_bias_relu", "matmul_epilogue", "matmul_bias_relu", (a_mm, b_mm, bias), 2 * 4096 ** 3, "TFLOP/s"),
        ("bmm", "bmm", "bmm", (bmm_a, bmm_b), 2 * 64 * 512 ** 3, "TFLOP/s"),
        ("attention", "attention", "attention", qkv, 4 * 4 * 32 * 4096 ** 2 * 128, "TFLOP/s"),
    ]


def bench(fn, args):
    return do_bench(lambda: fn(*args), warmup=25, rep=100, return_mode="median")


def rate(amount, ms, unit):
    return amount / (ms * 1e-3) / (1e9 if unit == "GB/s" else 1e12)


def one_line(exc):
    """An exception as one short line for stderr."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:200]


def assert_matches(out, ref):
    """bf16 tolerances: 2% relative, and 1% of the reference's RMS absolute (entries near zero); each
    output of a kernel returning several."""
    if isinstance(ref, (tuple, list)):
        assert len(out) == len(ref), f"{len(out)} outputs, expected {len(ref)}"
        for o, r in zip(out, ref):
            assert_matches(o, r)
        return
    out, ref = out.float(), ref.float()
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=1e-2 * ref.pow(2).mean().sqrt().item())


def liger_peers():
    """Liger's kernels, called with tilefn's arguments and computing the same math."""
    from liger_kernel.transformers.functional import (liger_cross_entropy, liger_layer_norm, liger_rms_norm,
                                                      liger_softmax)
    return {
        "softmax": liger_softmax,  # over the last dim
        "layer_norm": lambda x, weight, bias, eps=1e-5: liger_layer_norm(x, weight, bias, eps),
        # "gemma" casting: x and weight in fp32, one rounding at the end, as tilefn's rms_norm
        "rms_norm": lambda x, weight, eps=1e-5: liger_rms_norm(x, weight, eps, casting_mode="gemma", in_place=False),
        # mean over rows of logsumexp - logit[label]; no gradient is written since logits need none
        "cross_entropy": lambda logits, labels: liger_cross_entropy(logits, labels, reduction="mean"),
    }


def helion_peers():
    import helion_kernels  # benchmarks/helion_kernels.py; imports helion
    return helion_kernels.KERNELS


_PEER_LOADERS = {"liger": liger_peers, "helion": helion_peers}
_loaded_peers = {}


def library_peers(library):
    """example module name -> peer kernel for one library; {} (and a line on stderr) if it won't load."""
    if library not in _loaded_peers:
        try:
            _loaded_peers[library] = _PEER_LOADERS[library]()
        except Exception as exc:  # not installed, or incompatible with this torch/triton
            print(f"{library} unavailable: {one_line(exc)}", file=sys.stderr)
            _loaded_peers[library] = {}
    return _loaded_peers[library]


def time_peer(row, peer, fn, args, ref):
    """Check `fn` against eager torch's output `ref`, then time it; NaN if either step fails."""
    try:
        assert_matches(fn(*args), ref)
        return bench(fn, args)
    except Exception as exc:  # one failing peer must not hide the others
        print(f"{row}: {peer} failed: {one_line(exc)}", file=sys.stderr)
        return float("nan")


def check(out, ref):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    refs = ref if isinstance(ref, (tuple, list)) else (ref,)
    err = 0.0
    for o, r in zip(outs, refs):
        o, r = o.float(), r.float()
        err = max(err, ((o - r).norm() / r.norm().clamp_min(1e-12)).item())
    return err


@triton.jit
def _bare_add(x, y, out, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out + offs, tl.load(x + offs, mask=mask) + tl.load(y + offs, mask=mask), mask=mask)


def host_overhead_us(fn, calls=10000, repeats=5):
    """Wall time per call of back-to-back calls (small input: the host side dominates)."""
    for _ in range(100):
        fn()
    samples = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def overhead_table():
    add_module = importlib.import_module("add")
    x, y = _randn(1024, dtype=torch.float32), _randn(1024, dtype=torch.float32)
    out = torch.empty_like(x)

    def bare():
        _bare_add[(1,)](x, y, out, 1024, BLOCK=1024)

    host_fn = add_module.add.lower(x, y).compile()
    candidates = {"torch eager x + y": lambda: x + y, "bare triton.jit launch": bare,
                  "tilefn.jit add": lambda: add_module.add(x, y),
                  "  of which host function": lambda: host_fn(x, y)}
    samples = {name: [] for name in candidates}
    for _ in range(7):  # interleaved rounds: the VM's speed drifts between them
        for name, fn in candidates.items():
            samples[name].append(host_overhead_us(fn, calls=5000, repeats=1))
    print("\nper-call host overhead, 1024-element add (us/call, median of 7 interleaved rounds x 5000 calls)")
    for name, values in samples.items():
        print(f"  {name:<26} {statistics.median(values):7.2f}")


def ceilings():
    src = _randn(512 * 1024 * 1024 // 2)
    dst = torch.empty_like(src)
    ms = bench(lambda s, d: d.copy_(s), (src, dst))
    copy = rate(2 * _nbytes(src), ms, "GB/s")
    a, b = _randn(4096, 4096), _randn(4096, 4096)
    ms = bench(torch.matmul, (a, b))
    cublas = rate(2 * 4096 ** 3, ms, "TFLOP/s")
    print(f"ceilings: copy {copy:.0f} GB/s, cuBLAS bf16 4096^3 {cublas:.0f} TFLOP/s")
    return copy, cublas


def fmt_ms(ms):
    """A time column: milliseconds, or '-' for a peer that did not run (NaN)."""
    return f"{ms:8.3f}" if ms == ms else f"{'-':>8}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--no-liger", action="store_true")
    parser.add_argument("--no-helion", action="store_true")
    opts = parser.parse_args()
    libraries = [lib for lib, off in (("liger", opts.no_liger), ("helion", opts.no_helion)) if not off]
    print(torch.cuda.get_device_name(), "torch", torch.__version__, "triton", triton.__version__)
    copy, cublas = ceilings()
    overhead_table()
    header = (f"{'kernel':<20} {'tilefn':>8} {'eager':>8} {'compile':>8} {'liger':>8} {'helion':>8} {'rate':>9} "
              f"{'%ceil':>6} {'vs best':>7} {'best':<7} {'relerr':>8}")
    print("\n" + header + "\n" + "-" * len(header))
    wanted = set(filter(None, opts.only.split(",")))
    for name, module_name, attr, args, amount, unit in cases():
        if wanted and name not in wanted:
            continue
        module = importlib.import_module(module_name)
        kernel, reference = getattr(module, attr), module.reference
        try:
            ref = reference(*args)
            err = check(kernel(*args), ref)
            ours = bench(kernel, args)
        except Exception as exc:  # report and go on: one broken kernel must not hide the rest
            print(f"{name:<20} FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:150]}")
            continue
        peers = {"eager": bench(reference, args), "compile": float("nan")}
        if not opts.no_compile:
            peers["compile"] = time_peer(name, "compile", torch.compile(reference), args, ref)
        for library in ("liger", "helion"):
            peer_fn = library_peers(library).get(module_name) if library in libraries else None
            peers[library] = float("nan") if peer_fn is None else time_peer(name, library, peer_fn, args, ref)
        best_name = min((peer for peer, ms in peers.items() if ms == ms), key=peers.get)
        achieved = rate(amount, ours, unit)
        ceiling = copy if unit == "GB/s" else cublas
        print(f"{name:<20} {ours:8.3f} " + " ".join(fmt_ms(peers[p]) for p in ("eager", "compile", "liger", "helion"))
              + f" {achieved:7.0f}{unit[0]:>2} {100 * achieved / ceiling:5.0f}% {peers[best_name] / ours:6.2f}x "
              f"{best_name:<7} {err:8.1e}", flush=True)
    print("times in ms (median, triton.testing.do_bench); '-' = peer not run (none for this kernel, not "
          "installed, or failed: see stderr); rate in GB/s (G) or TFLOP/s (T); %ceil against the copy/cuBLAS "
          "ceiling above; vs best = best peer time / tilefn time, best = that peer")


if __name__ == "__main__":
    main()
