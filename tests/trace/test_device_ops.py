"""Torch ops on tiles: result dtypes follow PyTorch's promotion, shapes stay symbolic, the IR names primitives."""
import itertools

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ShapeError, TilefnError, UnsupportedOp
from tilefn.trace.ir import walk_eqns

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int32, torch.int64,
          torch.int8, torch.uint8, torch.bool]


def traced(fn, *dtypes, n=4):
    """Trace `fn` on tiles of 1-d tensors of `dtypes`; returns (its results, the program)."""
    results = []

    def kernel(x, y=None):  # kernels take no *args: each tensor is a named argument
        for t in tl.tile(n):
            results.append(fn(*[v[t] for v in (x, y) if v is not None]))
        return None

    program = tfn.make_ir(kernel)(*[torch.ones(n, dtype=d) for d in dtypes])
    return results[0], program


def shape_text(value):
    return [str(d) for d in value.shape]


def eager_dtype(fn, *dtypes):
    """The dtype eager PyTorch gives, or None when PyTorch refuses the call."""
    try:
        return fn(*[torch.ones(4, dtype=d) for d in dtypes]).dtype
    except (RuntimeError, TypeError):
        return None


def expect_same_dtype(fn, *dtypes):
    expected = eager_dtype(fn, *dtypes)
    if expected is None:
        with pytest.raises(TilefnError):
            traced(fn, *dtypes)
        return
    result, _ = traced(fn, *dtypes)
    assert result.dtype == expected, (dtypes, result.dtype, expected)


BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "truediv": lambda a, b: a / b, "floordiv": lambda a, b: a // b, "mod": lambda a, b: a % b,
    "pow": lambda a, b: a ** b, "maximum": torch.maximum, "minimum": torch.minimum,
    "lt": lambda a, b: a < b, "eq": lambda a, b: a == b, "ge": torch.ge,
    "logical_and": torch.logical_and, "bitwise_and": lambda a, b: a & b, "xor": lambda a, b: a ^ b,
    "atan2": torch.atan2,
}


@pytest.mark.parametrize("op", BINARY)
def test_binary_promotion_matches_pytorch(op):
    pairs = itertools.product([torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64,
                               torch.bool], repeat=2)
    for a, b in pairs:
        expect_same_dtype(BINARY[op], a, b)


@pytest.mark.parametrize("scalar", [2, 2.5, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_python_scalars_are_weakly_typed(scalar, dtype):
    for fn in (lambda a: a + scalar, lambda a: scalar * a, lambda a: a - scalar, lambda a: scalar / a,
               lambda a: a > scalar, lambda a: torch.maximum(a, torch.full_like(a, scalar)),
               lambda a: torch.where(a > 0, a, scalar), lambda a: torch.clamp(a, min=scalar)):
        expect_same_dtype(fn, dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int32, torch.float32])
def test_zero_dim_values_promote_like_scalars(dtype):
    """A reduction's 0-d result combined with a tile: PyTorch's dimension categories apply."""
    for fn in (lambda a, b: a + b.sum(), lambda a, b: a * b.amax(), lambda a, b: a.sum() + b):
        for other in (torch.float32, torch.int64, torch.float64):
            expect_same_dtype(fn, dtype, other)


UNARY = ["neg", "abs", "exp", "exp2", "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tanh",
         "sigmoid", "erf", "floor", "ceil", "round", "sign", "reciprocal", "logical_not",
         "bitwise_not", "isnan", "isfinite", "relu"]


@pytest.mark.parametrize("name", UNARY)
def test_unary_dtype_matches_pytorch(name):
    for dtype in DTYPES:
        expect_same_dtype(getattr(torch, name), dtype)
        expect_same_dtype(lambda a: getattr(a, name)(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduction_dtypes_match_pytorch(dtype):
    for fn in (lambda a: a.sum(), lambda a: torch.sum(a, dim=0), lambda a: a.prod(0),
               lambda a: a.amax(0), lambda a: a.amin(), lambda a: torch.argmax(a, 0),
               lambda a: a.argmin(dim=0), lambda a: a.mean(0), lambda a: a.max(dim=0).values,
               lambda a: a.min(0)[1], lambda a: torch.logsumexp(a, 0), lambda a: a.cumsum(0),
               lambda a: a.sum(dtype=torch.float32)):
        expect_same_dtype(fn, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_decompositions_keep_the_input_dtype(dtype):
    fns = [lambda a: torch.softmax(a, 0), lambda a: torch.log_softmax(a, -1),
           lambda a: torch.nn.functional.gelu(a), lambda a: torch.nn.functional.gelu(a, approximate="tanh"),
           lambda a: torch.nn.functional.silu(a), torch.sigmoid, torch.tanh,
           lambda a: torch.nn.functional.layer_norm(a, [4]), lambda a: torch.nn.functional.rms_norm(a, [4]),
           lambda a: torch.softmax(a, 0, dtype=torch.float32)]
    for fn in fns:
        expect_same_dtype(fn, dtype)


def test_reduction_shapes_with_dim_and_keepdim():
    results = []

    def kernel(x):
        for tm, tn in tl.tile(x.shape):
            v = x[tm, tn]
            results.extend([v.sum(0), v.sum(1, keepdim=True), v.sum(), v.amax(dim=(0, 1), keepdim=True),
                            v.mean(-1), torch.argmax(v, 1, keepdim=True), torch.logsumexp(v, 0),
                            v.max(1).values, v.min(dim=0, keepdim=True).indices])
        return None

    tfn.make_ir(kernel)(torch.randn(8, 8))
    assert [shape_text(r) for r in results] == [
        ["t1"], ["t0", "1"], [], ["1", "1"], ["t0"], ["t0", "1"], ["t1"], ["t0"], ["1", "t1"]]
    assert results[5].dtype == results[8].dtype == torch.int64


def test_view_shapes():
    results = []

    def kernel(x):
        m, n = x.shape
        for tm in tl.tile(m):
            v = x[tm, :]  # [tm, 6]
            results.extend([v[:, None], v[None], v[..., None], v.unsqueeze(1), v.unsqueeze(-1).squeeze(-1),
                            v[:, None].squeeze(), v.reshape(tm, 2, 3), v.view(tm, -1, 2), v.permute(1, 0),
                            v.transpose(0, 1), v.t(), v.T, v[:, None].expand(tm, 4, 6),
                            v[:, :, None].broadcast_to([tm, 6, 5])])
        return None

    tfn.make_ir(kernel)(torch.randn(8, 6))
    assert [shape_text(r) for r in results] == [
        ["t0", "1", "6"], ["1", "t0", "6"], ["t0", "6", "1"], ["t0", "1", "6"], ["t0", "6"],
        ["t0", "6"], ["t0", "2", "3"], ["t0", "3", "2"], ["6", "t0"], ["6", "t0"], ["6", "t0"],
        ["6", "t0"], ["t0", "4", "6"], ["t0", "6", "5"]]


def test_bad_views_are_shape_errors():
    for fn, match in [(lambda v: v.reshape(7), "can't reshape"), (lambda v: v.permute(0, 0), "permutation"),
                      (lambda v: v.expand(5), "can't expand"), (lambda v: v[0:2], "can only be indexed with"),
                      (lambda v: v[1], r"only 0 \(its first element\) and -1"), (lambda v: v[None, 0, 0], "can only")]:
        with pytest.raises(ShapeError, match=match):
            traced(fn, torch.float32)


@pytest.mark.parametrize("a, b, expected", [
    (torch.float16, torch.float16, torch.float16), (torch.bfloat16, torch.bfloat16, torch.bfloat16),
    (torch.float32, torch.float32, torch.float32), (torch.float16, torch.float32, torch.float32),
    (torch.int32, torch.int32, torch.int32),
])
def test_matmul_dtypes(a, b, expected):
    results = []

    def kernel(x, y):
        m, k = x.shape
        for tm in tl.tile(m):
            for tk in tl.tile(k):
                lhs, rhs = x[tm, tk], y[tk, :]
                acc = tl.zeros([tm, 8], dtype=torch.float32)
                results.extend([lhs @ rhs, torch.matmul(lhs, rhs), torch.mm(lhs, rhs),
                                torch.addmm(acc, lhs, rhs), tl.dot(lhs, rhs)])
        return None

    tfn.make_ir(kernel)(torch.ones(4, 4, dtype=a), torch.ones(4, 8, dtype=b))
    assert [r.dtype for r in results[:3]] == [expected] * 3
    assert results[3].dtype == torch.float32  # addmm keeps its accumulator's dtype
    assert results[4].dtype == (torch.int32 if expected == torch.int32 else torch.float32)
    assert all(shape_text(r) == ["t0", "8"] for r in results)


def test_batched_matmul_shapes():
    results = []

    def kernel(x, y):
        for tb in tl.tile(x.size(0)):
            a, b = x[tb, :, :], y[tb, :, :]
            acc = tl.zeros([tb, 3, 5], dtype=torch.float32)
            results.extend([torch.bmm(a, b), torch.baddbmm(acc, a, b), a @ b])
        return None

    tfn.make_ir(kernel)(torch.randn(2, 3, 4), torch.randn(2, 4, 5))
    assert [shape_text(r) for r in results] == [["t0", "3", "5"]] * 3


def test_matmul_shape_errors():
    with pytest.raises(ShapeError, match="inner dimensions differ"):
        traced(lambda a, b: a[:, None] @ b[:, None], torch.float32, torch.float32)
    with pytest.raises(ShapeError, match="both must be 2-d or 3-d"):
        traced(lambda a, b: a @ b, torch.float32, torch.float32)


def test_creation_ops():
    results = []

    def kernel(x):
        for tm in tl.tile(x.size(0)):
            v = x[tm]
            results.extend([tl.zeros([tm, 4], dtype=torch.float16), tl.full([tm], 1.5, dtype=torch.bfloat16),
                            tl.arange(8), tl.arange(2, 6, dtype=torch.int64), torch.zeros_like(v),
                            torch.full([tm, 2], 3), torch.ones([2, tm], dtype=torch.int32), v.new_zeros([tm]),
                            torch.arange(4)])
        return None

    tfn.make_ir(kernel)(torch.randn(8))
    assert [(r.dtype, shape_text(r)) for r in results] == [
        (torch.float16, ["t0", "4"]), (torch.bfloat16, ["t0"]), (torch.int32, ["8"]), (torch.int64, ["4"]),
        (torch.float32, ["t0"]), (torch.int64, ["t0", "2"]), (torch.int32, ["2", "t0"]),
        (torch.float32, ["t0"]), (torch.int32, ["4"])]


def test_tile_attributes():
    results = []

    def kernel(x):
        for t in tl.tile(x.size(0)):
            results.extend([t.index, t.begin, t.end, t.id, t.block_size, t.count])
        return None

    program = tfn.make_ir(kernel)(torch.randn(8))
    assert [(r.dtype, shape_text(r)) for r in results] == [(torch.int32, ["t0"])] + [(torch.int32, [])] * 5
    prims = [e.prim.name for e in walk_eqns(program.eqns)]
    for prim in ("tile_index", "tile_begin", "tile_end", "tile_id", "block_size", "tile_count"):
        assert prim in prims


def test_a_tile_used_as_a_value_means_its_indices():
    results = []

    def kernel(x):
        for t in tl.tile(x.size(0)):
            results.append(t + 1)
            results.append(torch.where(t < 2, x[t], 0.0))
        return None

    tfn.make_ir(kernel)(torch.randn(8))
    assert results[0].dtype == torch.int32 and shape_text(results[0]) == ["t0"]
    assert results[1].dtype == torch.float32


def test_casts():
    for target in (torch.float16, torch.bfloat16, torch.int32, torch.bool, torch.float64):
        result, program = traced(lambda a: a.to(target), torch.float32)
        assert result.dtype == target
        assert any(e.prim.name == "convert" for e in walk_eqns(program.eqns))
    for method, dtype in [("float", torch.float32), ("half", torch.float16), ("bfloat16", torch.bfloat16),
                          ("int", torch.int32), ("long", torch.int64), ("bool", torch.bool)]:
        result, _ = traced(lambda a: getattr(a, method)(), torch.float64)
        assert result.dtype == dtype
    result, program = traced(lambda a: a.to(torch.float32), torch.float32)
    assert not any(e.prim.name == "convert" for e in walk_eqns(program.eqns))  # a no-op cast adds nothing
    result, _ = traced(lambda a, b: a.to(b), torch.float32, torch.bfloat16)
    assert result.dtype == torch.bfloat16
    result, _ = traced(lambda a: a.type(torch.int8), torch.float32)
    assert result.dtype == torch.int8


def test_pointwise_primitives_in_the_ir():
    _, program = traced(lambda a, b: torch.where(a > b, torch.clamp(a, -1, 1), a ** 2), torch.float32,
                        torch.float32)
    prims = [e.prim.name for e in walk_eqns(program.eqns)]
    assert {"gt", "maximum", "minimum", "pow", "where"} <= set(prims)


@pytest.mark.parametrize("call, name", [
    (lambda a: torch.lgamma(a), "torch.lgamma"),
    (lambda a: torch.special.i0(a), "i0"),
    (lambda a: a.kthvalue(1), "torch.Tensor.kthvalue"),
    (lambda a: torch.fft.fft(a), "fft"),
    (lambda a: torch.digamma(a), "torch.digamma"),
])
def test_unsupported_ops_are_named(call, name):
    with pytest.raises(UnsupportedOp, match=name.replace(".", r"\.") + r".* not supported inside a tile loop"):
        traced(call, torch.float32)


def test_var_and_std_functions():
    for fn in (lambda a: torch.var(a, 0), lambda a: torch.std(a, dim=0, keepdim=True), lambda a: a.std(0)):
        expect_same_dtype(fn, torch.float32)


def test_var_method():
    result, _ = traced(lambda a: a.var(0), torch.float32)
    assert result.dtype == torch.float32


def host_tensor_factories(x, w):
    out = torch.empty([x.shape[0]], dtype=torch.float32)
    n = w.shape[0]
    for tm in tl.tile(x.shape[0]):
        acc = w.new_zeros(n, dtype=torch.float32)  # a host tensor's factory methods read only its dtype
        acc += x[tm, :].sum(0)
        scale = x.new_ones([tm, n]) * 2 + w.new_full([n], 0.5)
        out[tm] = (x[tm, :] * scale).sum(1) + acc.sum() * 0
    return out


@pytest.mark.parametrize("interpret", [False, True])
def test_new_factories_of_a_host_tensor_make_device_values_inside_a_tile_loop(interpret):
    x, w = torch.randn(9, 16), torch.randn(16)
    run = tfn.interpret(host_tensor_factories) if interpret else tfn.jit(host_tensor_factories)
    torch.testing.assert_close(run(x, w), (x * 2.5).sum(1))
