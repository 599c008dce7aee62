"""Tests for tilefn.lower.launch: kernel source text -> Launcher (CPU through Triton's interpreter, CUDA if present)."""
import hashlib
import inspect
import logging
import os
import traceback

import pytest
import torch
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.runtime.jit import JITFunction

import tilefn as tfn
from tilefn import lang as tfn_lang
from tilefn.lower.launch import _compile_cuda, load_kernel, make_launcher

# Triton 3.6's interpreter turns 1-element arrays into ints for range(); numpy >= 1.25 warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")

HEADER = "import triton\nimport triton.language as tl\n\n\n"

ADD = HEADER + '''@triton.jit
def add(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, x + y, mask=mask)
'''

ROW_SUM = HEADER + '''@triton.jit
def row_sum(x_ptr, out_ptr, n_cols, stride, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        acc += tl.load(x_ptr + row * stride + cols, mask=cols < n_cols, other=0.0)
    tl.store(out_ptr + row, tl.sum(acc, axis=0))
'''

MATMUL = HEADER + '''@triton.jit
def matmul(a_ptr, b_ptr, c_ptr, M, N, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k0 in range(0, K, BK):
        rk = k0 + tl.arange(0, BK)
        a = tl.load(a_ptr + rm[:, None] * K + rk[None, :], mask=(rm[:, None] < M) & (rk[None, :] < K), other=0.0)
        b = tl.load(b_ptr + rk[:, None] * N + rn[None, :], mask=(rk[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc)
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc, mask=(rm[:, None] < M) & (rn[None, :] < N))
'''

CONSTEXPRS = HEADER + '''@triton.jit
def _twice(x):
    return x * 2


@triton.jit
def affine(x_ptr, out_ptr, n, SCALE: tl.constexpr, DOUBLE: tl.constexpr, REPS: tl.constexpr,
           BLOCK: tl.constexpr = 64):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = x * SCALE
    if DOUBLE:
        y = _twice(y)
    for _ in tl.static_range(REPS):
        y = y + 1.0
    tl.store(out_ptr + offs, y, mask=mask)
'''


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path))


def _lang_state():
    """Everything the interpreter patches: language modules, tensor/dtype classes, JITFunction.__call__."""
    objs = (tl, tl.core, tl.math, tl.standard, tl.core.tensor, tl.core.dtype)
    return [dict(vars(o)) for o in objs], JITFunction.__call__


def _assert_lang_restored(before):
    attrs_before, call_before = before
    attrs_after, call_after = _lang_state()
    for b, a in zip(attrs_before, attrs_after):
        # Triton's rewriter may add names to a module's globals, but nothing that was there may change.
        assert {k for k in b if a.get(k) is not b[k]} == set()
    assert call_after is call_before
    assert "TRITON_INTERPRET" not in os.environ
    assert not triton.knobs.runtime.interpret


def cdiv(a, b):
    return -(-a // b)


@pytest.mark.parametrize("n", [1, 1000, 1024, 3000])
def test_add_masked(n):
    launch = make_launcher(ADD, "add", signature_args=["*fp32", "*fp32", "*fp32", "i32"], constexprs={"BLOCK": 256},
                           num_warps=4, num_stages=2, device="cpu")
    x, y = torch.randn(n), torch.randn(n)
    out = torch.full((n + 300, ), float("nan"))
    launch((cdiv(n, 256), 1, 1), x, y, out, n)
    torch.testing.assert_close(out[:n], x + y)
    assert out[n:].isnan().all()  # masked lanes past n untouched


def test_loop_carried_accumulator():
    rows, cols = 5, 1000
    x = torch.randn(rows, cols)
    out = torch.full((rows, ), float("nan"))
    launch = make_launcher(ROW_SUM, "row_sum", signature_args=[x, out, cols, cols], constexprs={"BLOCK": 128},
                           num_warps=4, num_stages=2, device="cpu")
    launch((rows, 1, 1), x, out, cols, cols)
    torch.testing.assert_close(out, x.sum(dim=1), rtol=1e-5, atol=1e-4)


def test_dot():
    M, N, K = 40, 48, 72
    a, b = torch.randn(M, K), torch.randn(K, N)
    c = torch.full((M, N), float("nan"))
    launch = make_launcher(MATMUL, "matmul", signature_args=[a, b, c, M, N, K],
                           constexprs={"BM": 16, "BN": 32, "BK": 16}, num_warps=4, num_stages=2, device="cpu")
    launch((cdiv(M, 16), cdiv(N, 32), 1), a, b, c, M, N, K)
    ref = (a.double() @ b.double()).float()
    torch.testing.assert_close(c, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scale, double, reps", [(3.0, False, 0), (0.5, True, 2), (-1, True, 5)])
def test_constexprs(scale, double, reps):
    n = 200
    x = torch.randn(n)
    out = torch.full((n, ), float("nan"))
    launch = make_launcher(CONSTEXPRS, "affine", signature_args=[x, out, n],
                           constexprs={"SCALE": scale, "DOUBLE": double, "REPS": reps}, num_warps=4, num_stages=2,
                           device="cpu")
    launch((cdiv(n, 64), 1, 1), x, out, n)  # BLOCK comes from its default, 64
    torch.testing.assert_close(out, x * scale * (2 if double else 1) + reps)


def test_bad_constexprs():
    middle = HEADER + "@triton.jit\ndef k(x_ptr, BLOCK: tl.constexpr, n):\n    pass\n"
    with pytest.raises(ValueError, match="trailing"):
        make_launcher(middle, "k", signature_args=["*fp32", "i32"], constexprs={"BLOCK": 8}, num_warps=4,
                      num_stages=2, device="cpu")
    with pytest.raises(ValueError, match="missing constexpr"):
        make_launcher(ADD, "add", signature_args=["*fp32"] * 3 + ["i32"], constexprs={}, num_warps=4, num_stages=2,
                      device="cpu")
    with pytest.raises(ValueError, match="signature_args"):
        make_launcher(ADD, "add", signature_args=["*fp32"], constexprs={"BLOCK": 256}, num_warps=4, num_stages=2,
                      device="cpu")


def test_interpreter_does_not_leak():
    before = _lang_state()
    for src, name in [(ROW_SUM, "row_sum"), (CONSTEXPRS, "affine")]:
        launch = make_launcher(src, name, signature_args=["*fp32", "*fp32", "i32"] + ["i32"] * (name == "row_sum"),
                               constexprs={"BLOCK": 64} if name == "row_sum" else {"SCALE": 1, "DOUBLE": 1, "REPS": 1},
                               num_warps=4, num_stages=2, device="cpu")
        args = (torch.randn(64), torch.empty(64), 64) + ((64, ) if name == "row_sum" else ())
        launch((1, 1, 1), *args)
    _assert_lang_restored(before)
    # A failing kernel must restore the language too.
    bad = make_launcher(ADD, "add", signature_args=["*fp32"] * 3 + ["i32"], constexprs={"BLOCK": 64}, num_warps=4,
                        num_stages=2, device="cpu")
    with pytest.raises(Exception):
        bad((1, 1, 1), torch.randn(64), "not a tensor", torch.empty(64), 64)
    _assert_lang_restored(before)


def test_gpu_compile_after_interpreting():
    """After interpreted runs, the same kernel still compiles for CUDA (cross-compiled: no GPU needed)."""
    x = torch.randn(64)
    make_launcher(ROW_SUM, "row_sum", signature_args=[x, x, 64, 64], constexprs={"BLOCK": 64}, num_warps=4,
                  num_stages=2, device="cpu")((1, 1, 1), x, torch.empty(1), 64, 64)
    kernel = _compile_cuda(load_kernel(ROW_SUM, "row_sum", interpret=False), [x, "*fp32", 64, 64], {"BLOCK": 64},
                           num_warps=2, num_stages=2, target=GPUTarget("cuda", 90, 32))
    assert kernel.src.signature == {"x_ptr": "*fp32", "out_ptr": "*fp32", "n_cols": "i32", "stride": "i32",
                                    "BLOCK": "constexpr"}
    assert kernel.src.attrs == {(0, ): [["tt.divisibility", 16]]}  # aligned tensor example; type strings stay bare
    assert kernel.metadata.num_warps == 2


def test_source_file_and_module_cache():
    jit_fn = load_kernel(ADD, "add", interpret=False)
    assert isinstance(jit_fn, JITFunction)
    assert load_kernel(ADD, "add", interpret=False) is jit_fn
    path = inspect.getsourcefile(jit_fn.fn)
    assert open(path).read() == ADD
    assert "def add(" in inspect.getsource(jit_fn.fn)
    assert path.endswith(f"/src/{hashlib.sha256(ADD.encode()).hexdigest()}.py")
    interp = load_kernel(ADD, "add", interpret=True)
    x, y, out = torch.randn(10), torch.randn(10), torch.empty(10)
    interp[(1, )](x, y, out, 10, BLOCK=16)  # the interpreter's function also works on its own
    torch.testing.assert_close(out, x + y)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("n", [1024, 1 << 20, 1000])
def test_cuda_add(n):
    x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    out = torch.full((n + 256, ), float("nan"), device="cuda")
    launch = make_launcher(ADD, "add", signature_args=[x, y, out, n], constexprs={"BLOCK": 1024}, num_warps=4,
                           num_stages=2, device=x.device)
    launch((cdiv(n, 1024), 1, 1), x, y, out, n)
    torch.testing.assert_close(out[:n], x + y)
    assert out[n:].isnan().all()
    out.fill_(float("nan"))
    launch((cdiv(n, 1024), 1, 1), x.data_ptr(), y.data_ptr(), out.data_ptr(), n)  # raw pointers work too
    torch.testing.assert_close(out[:n], x + y)


@pytest.mark.gpu
@needs_cuda
def test_cuda_dot_side_stream_and_graph():
    M, N, K = 96, 80, 144
    a, b = torch.randn(M, K, device="cuda"), torch.randn(K, N, device="cuda")
    c = torch.full((M, N), float("nan"), device="cuda")
    launch = make_launcher(MATMUL, "matmul", signature_args=[a, b, c, M, N, K],
                           constexprs={"BM": 32, "BN": 32, "BK": 32}, num_warps=4, num_stages=2, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # launches on the current stream at call time
        launch((cdiv(M, 32), cdiv(N, 32), 1), a, b, c, M, N, K)
    side.synchronize()
    ref = a.double().matmul(b.double()).float()
    torch.testing.assert_close(c, ref, rtol=2e-2, atol=2e-2)  # tf32
    graph = torch.cuda.CUDAGraph()
    c.fill_(float("nan"))
    with torch.cuda.graph(graph):  # the launch is captured, not run
        launch((cdiv(M, 32), cdiv(N, 32), 1), a, b, c, M, N, K)
    assert c.isnan().all()
    graph.replay()
    torch.testing.assert_close(c, ref, rtol=2e-2, atol=2e-2)


# --- a cache directory that cannot be written ----------------------------------------------
BAD = HEADER + '''@triton.jit
def bad(x_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    y = undefined_name + 1.0
    tl.store(x_ptr + offs, y)
'''


@pytest.fixture
def unwritable_cache(tmp_path, monkeypatch):
    """TILEFN_CACHE_DIR under a regular file: no one can create it (root included, unlike a chmod)."""
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path / "file" / "cache"))


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_source_runs_from_memory_when_the_cache_cannot_be_written(unwritable_cache, caplog):
    jit_fn = load_kernel(ROW_SUM, "row_sum", interpret=False)
    assert inspect.getsource(jit_fn.fn).startswith("@triton.jit\ndef row_sum(")  # what @triton.jit needs
    x = torch.randn(3, 64)
    out = torch.empty(3)
    make_launcher(ROW_SUM, "row_sum", signature_args=[x, out, 64, 64], constexprs={"BLOCK": 32}, num_warps=4,
                  num_stages=2, device="cpu")((3, 1, 1), x, out, 64, 64)
    torch.testing.assert_close(out, x.sum(dim=1), rtol=1e-5, atol=1e-4)
    _compile_cuda(jit_fn, [x, "*fp32", 64, 64], {"BLOCK": 64}, num_warps=2, num_stages=2,
                  target=GPUTarget("cuda", 90, 32))  # Triton's compiler reads the source too
    launch = make_launcher(BAD, "bad", signature_args=["*fp32"], constexprs={"BLOCK": 16}, num_warps=4,
                           num_stages=2, device="cpu")
    with pytest.raises(Exception) as info:
        launch((1, 1, 1), torch.empty(16))
    assert "y = undefined_name + 1.0" in "".join(traceback.format_exception(info.value))  # tracebacks show lines
    (message,) = _warnings(caplog)  # one warning for three sources
    assert "working without it" in message


def add_kernel(x, y):
    out = torch.empty_like(x)
    for t in tfn_lang.tile(out.shape):
        out[t] = x[t] + y[t]
    return out


def test_a_plain_jit_call_works_when_the_cache_cannot_be_written(unwritable_cache, caplog):
    kernel = tfn.jit(add_kernel)
    for shape in [(8, 32), (8, 32), (5, 7)]:  # two lowerings, three calls
        x, y = torch.randn(shape), torch.randn(shape)
        torch.testing.assert_close(kernel(x, y), x + y)
    assert len(_warnings(caplog)) == 1
