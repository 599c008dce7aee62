"""Runtime float arguments on a CUDA GPU: results against eager torch per dtype, one compile for many
values, and the call path with the same float vs a new float each call (needs a CUDA GPU).

Run from anywhere: python benchmarks/runtime_floats.py [--calls 20000]
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import tilefn as tfn  # noqa: E402
from tilefn import lang as tl  # noqa: E402


@tfn.jit
def rms_scale(x, eps):
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        row = x[tm, :].to(torch.float32)
        out[tm, :] = (row * torch.rsqrt((row * row).mean(-1, keepdim=True) + eps)).to(x.dtype)
    return out


@tfn.jit
def axpb(x, alpha):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] * alpha + alpha
    return out


def check() -> None:
    x = torch.randn(300, 700, device="cuda")
    for eps in [1e-6 * 10 ** i for i in range(10)]:
        want = (x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps))
        torch.testing.assert_close(rms_scale(x, eps), want)
    print(f"rms_scale, 10 values of eps: {rms_scale.cache_info()}")
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        v = (torch.randn(5000, device="cuda") * 8).to(dtype)
        got, want = axpb(v, 0.1), v * 0.1 + 0.1
        assert got.dtype == dtype
        print(f"{dtype}: max |got - eager| {(got.double() - want.double()).abs().max().item():.3g}, "
              f"bitwise equal {torch.equal(got, want)}")


def per_call_us(values, x) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for v in values:
        axpb(x, v)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / len(values) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    check()
    x = torch.randn(1024, device="cuda")
    axpb(x, 0.5)
    new = [0.5 + i * 1e-4 for i in range(args.calls)]
    for _ in range(2):  # (the second round is the one printed)
        same, fresh = per_call_us([0.5] * args.calls, x), per_call_us(new, x)
    print(f"call path: the same float {same:.2f} us, a new float each call {fresh:.2f} us; {axpb.cache_info()}")


if __name__ == "__main__":
    main()
