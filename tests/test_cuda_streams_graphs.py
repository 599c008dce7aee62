"""On the GPU: jit and tuned kernels launch on torch's current stream, and capture and replay under
torch.cuda.graph, device-made tensor descriptors (scratch from torch's allocator) included."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def double(x):
    out = torch.empty_like(x)
    for t in tl.tile(out.shape):
        out[t] = x[t] * 2
    return out


def matmul(a, b):
    m, k = a.shape
    _, n = b.shape
    out = torch.empty(m, n, dtype=a.dtype, device=a.device)
    for tm, tn in tl.tile([m, n]):
        acc = tl.zeros([tm, tn], dtype=torch.float32)
        for tk in tl.tile(k):
            acc = tl.dot(a[tm, tk], b[tk, tn], acc=acc)
        out[tm, tn] = acc.to(a.dtype)
    return out


DESCRIPTORS = tfn.Config(block_sizes=[64, 64, 32], indexing="tensor_descriptor")


def test_a_kernel_runs_on_the_current_stream_after_the_work_queued_there():
    kernel = tfn.jit(double)
    source = torch.randn(1 << 20, device="cuda")
    x = torch.zeros_like(source)
    kernel(x)  # compiled before the timed part
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)  # ~25 ms of GPU time on `side` before the copy
        x.copy_(source)
        out = kernel(x)  # on the default stream it would read x before the copy lands
    side.synchronize()
    torch.testing.assert_close(out, source * 2)


@pytest.mark.parametrize("config", [None, DESCRIPTORS], ids=["default", "tensor_descriptor"])
def test_a_jit_kernel_captures_and_replays_in_a_cuda_graph(config):
    a, b = torch.randn(256, 128, device="cuda", dtype=torch.bfloat16), torch.randn(128, 192, device="cuda",
                                                                                  dtype=torch.bfloat16)
    kernel = tfn.jit(matmul, config=config)
    side = torch.cuda.Stream()  # warm up (compile) off the capture, as torch asks
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        kernel(a, b)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = kernel(a, b)
    for _ in range(3):
        a.copy_(torch.randn_like(a))
        b.copy_(torch.randn_like(b))
        graph.replay()
        torch.cuda.synchronize()
        torch.testing.assert_close(out, (a.float() @ b.float()).to(a.dtype), rtol=2e-2, atol=2e-2)


def test_a_tuned_kernel_captures_and_replays_in_a_cuda_graph(tmp_path, monkeypatch):
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path))
    x = torch.randn(4096, 1024, device="cuda")
    tuned = tfn.tune(double, effort="quick", verbose=False)
    torch.testing.assert_close(tuned(x), x * 2)  # tunes here, outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = tuned(x)
    x.copy_(torch.randn_like(x))
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(out, x * 2)
