"""A user script with no `if __name__ == "__main__"` guard that tunes a kernel (needs a CUDA GPU).

    python benchmarks/no_main_guard_tune.py

Compile workers must not re-run this body: it prints "body ran" exactly once (multiprocessing's spawn
ran it once per worker start). Used by hand on the GPU; tests/tune/test_workers.py checks the same on CPU.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import tilefn as tfn  # noqa: E402
from tilefn import lang as tl  # noqa: E402

print("body ran", flush=True)


def scale_add(x, y):
    out = torch.empty_like(x)
    for tm, tn in tl.tile([x.shape[0], x.shape[1]]):
        out[tm, tn] = x[tm, tn] * 2 + y[tm, tn]
    return out


x, y = torch.randn(4096, 4096, device="cuda"), torch.randn(4096, 4096, device="cuda")
tuned = tfn.tune(scale_add, effort="quick", use_cache=False)
print("tuned ok:", torch.allclose(tuned(x, y), x * 2 + y), tuned.best_config(x, y), flush=True)
