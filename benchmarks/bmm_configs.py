"""Time tfn.jit(bmm) at 64x512^3 bf16 under explicit Configs against torch.bmm (cuBLAS); print a table."""
import sys, time
import torch
from triton.testing import do_bench
sys.path[:0] = ["examples"]
import tilefn as tfn
from bmm import bmm

x, y = (torch.randn(64, 512, 512, device="cuda", dtype=torch.bfloat16) for _ in range(2))
want = torch.bmm(x, y)
flops = 2 * 64 * 512 ** 3
ms = lambda f: do_bench(f, warmup=25, rep=100, return_mode="median")
rows = [("torch.bmm", ms(lambda: torch.bmm(x, y)))]
C = lambda bs, w=8, s=3, **kw: tfn.Config(block_sizes=bs, num_warps=w, num_stages=s, **kw)
variants = {
    "default": None,
    "128x128x64 w8 s3 desc": C([1, 128, 128, 64], indexing="tensor_descriptor"),
    "128x256x64 w8 s3": C([1, 128, 256, 64]),
    "128x256x64 w8 s3 desc": C([1, 128, 256, 64], indexing="tensor_descriptor"),
    "128x128x64 w4 s4": C([1, 128, 128, 64], 4, 4),
    "128x128x128 w8 s2": C([1, 128, 128, 128], 8, 2),
    "256x128x64 w8 s3": C([1, 256, 128, 64]),
    "64x128x64 w4 s4": C([1, 64, 128, 64], 4, 4),
    "128x128x64 w8 s4 block_ptr": C([1, 128, 128, 64], 8, 4, indexing="block_ptr"),
}
for name, cfg in variants.items():
    try:
        t0 = time.time()
        k = tfn.jit(bmm.fn, config=cfg) if cfg is not None else bmm
        torch.testing.assert_close(k(x, y), want, atol=1e-1, rtol=2e-2)
        rows.append((name, ms(lambda: k(x, y))))
        print(name, f"compiled+checked in {time.time() - t0:.1f}s", flush=True)
    except Exception as e:  # noqa: BLE001
        print(name, "FAILED", type(e).__name__, str(e)[:300], flush=True)
base = rows[0][1]
print(f"{'variant':32s} {'ms':>8s} {'TFLOP/s':>8s} {'% cuBLAS':>8s}")
for name, t in rows:
    print(f"{name:32s} {t:8.4f} {flops / t / 1e9:8.1f} {100 * base / t:8.1f}")
