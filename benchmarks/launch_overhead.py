"""Per-call host overhead of tilefn's Launcher vs torch eager and a plain @triton.jit launch (needs a CUDA GPU).

Run from anywhere: python benchmarks/launch_overhead.py [--calls 10000] [--repeats 5]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from tilefn.lower.launch import make_launcher  # noqa: E402

BLOCK = 1024
ADD_SOURCE = '''import triton
import triton.language as tl


@triton.jit
def add(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)
'''


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


def check_correctness(launch) -> None:
    """The Launcher matches torch on 1024 and 1M elements (and 1M+3, to exercise the mask)."""
    for n in (1024, 1 << 20, (1 << 20) + 3):
        x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
        out = torch.full((n + BLOCK, ), float("nan"), device="cuda")
        launch((triton.cdiv(n, BLOCK), 1, 1), x, y, out, n)
        torch.cuda.synchronize()
        assert torch.equal(out[:n], x + y), f"Launcher result differs from torch at n={n}"
        assert out[n:].isnan().all(), f"Launcher wrote past n={n}"
        print(f"correct: n={n}")


def wall_us(loop, calls: int) -> float:
    """Wall time of `calls` back-to-back launches between two synchronizes, per call, in us."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    loop(calls)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls * 1e6


def enqueue_us(loop, calls: int = 200, bursts: int = 10) -> float:
    """Median host time per launch of short bursts that fit the launch queue (no waiting on the GPU), in us."""
    times = []
    for _ in range(bursts):
        torch.cuda.synchronize()
        start = time.perf_counter()
        loop(calls)
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    assert torch.cuda.is_available(), "needs a CUDA GPU"
    print(f"{torch.cuda.get_device_name()} | torch {torch.__version__} | triton {triton.__version__} | "
          f"python {sys.version.split()[0]}")

    n = 1024
    x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    out = torch.empty(n, device="cuda")
    launch = make_launcher(ADD_SOURCE, "add", signature_args=[x, y, out, n], constexprs={"BLOCK": BLOCK},
                           num_warps=4, num_stages=2, device=x.device)
    check_correctness(launch)
    grid, grid3 = (triton.cdiv(n, BLOCK), ), (triton.cdiv(n, BLOCK), 1, 1)
    add_kernel[grid](x, y, out, n, BLOCK=BLOCK)  # compile outside the timings
    assert torch.equal(out, x + y), "plain triton launch differs from torch"

    def torch_eager(calls):
        for _ in range(calls):
            x + y

    def triton_jit(calls):
        for _ in range(calls):
            add_kernel[grid](x, y, out, n, BLOCK=BLOCK)

    def tilefn_launcher(calls):
        for _ in range(calls):
            launch(grid3, x, y, out, n)

    rows = [("(a) torch eager x + y", torch_eager), ("(b) triton kernel[grid](...)", triton_jit),
            ("(c) tilefn Launcher", tilefn_launcher)]
    for _, loop in rows:
        loop(1000)  # warm up
    # Repeats are interleaved across rows so that drift in the machine's speed hits every row alike.
    wall, enqueue = {label: [] for label, _ in rows}, {label: [] for label, _ in rows}
    for _ in range(args.repeats):
        for label, loop in rows:
            wall[label].append(wall_us(loop, args.calls))
            enqueue[label].append(enqueue_us(loop))
    print(f"\nper-call host overhead, {n} fp32 elements, median of {args.repeats} x {args.calls} calls")
    print(f"{'':42} {'wall/call us':>13} {'enqueue/call us':>16}")
    for label, _ in rows:
        print(f"{label:42} {statistics.median(wall[label]):13.2f} {statistics.median(enqueue[label]):16.2f}")
    print("wall: synchronize, N calls, synchronize; enqueue: host time of 200-call bursts that fit the launch queue")


if __name__ == "__main__":
    main()
