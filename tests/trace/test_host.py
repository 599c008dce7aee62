"""Host code: torch calls outside tile loops are recorded on meta tensors and replayed at call time."""
import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import HostReadsDevice, TracingError

CONFIG = tfn.Config(block_sizes=[4, 8, 8])


def run(kernel, *args, config=CONFIG):
    return tfn.interpret(kernel, config=config)(*args)


def host_prims(program):
    """The torch functions of the host equations, in order, with 'kernel' where the launch is."""
    from tilefn.trace.naming import op_name

    return [op_name(e.params["fn"]) if e.prim.name == "host" else e.prim.name for e in program.eqns]


def copy_kernel(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape):
        out[t] = x[t]
    return out


def test_shape_and_size_are_static_ints():
    seen = []

    def kernel(x):
        m, n = x.shape
        rows, cols = x.size()
        seen.append((m, n, rows, cols, x.size(1), x.shape[-1], x.ndim, x.dim(), x.numel(), len(x)))
        out = torch.empty([m, n], dtype=x.dtype, device=x.device)
        for tm, tn in tl.tile([m, n]):
            out[tm, tn] = x[tm, tn]
        return out

    x = torch.randn(5, 7)
    torch.testing.assert_close(run(kernel, x), x)
    assert seen[0] == (5, 7, 5, 7, 7, 7, 2, 2, 35, 5)
    assert all(type(v) is int for v in seen[0])


@pytest.mark.parametrize("factory", ["empty", "empty_like", "zeros", "zeros_like", "full", "new_empty",
                                     "new_zeros", "new_full", "ones"])
def test_factories(factory):
    def kernel(x):
        m, n = x.shape
        make = {
            "empty": lambda: torch.empty([m, n], dtype=x.dtype, device=x.device),
            "empty_like": lambda: torch.empty_like(x),
            "zeros": lambda: torch.zeros(m, n, dtype=x.dtype, device=x.device),
            "zeros_like": lambda: torch.zeros_like(x),
            "full": lambda: torch.full((m, n), 7.0, dtype=x.dtype, device=x.device),
            "new_empty": lambda: x.new_empty([m, n]),
            "new_zeros": lambda: x.new_zeros(m, n),
            "new_full": lambda: x.new_full([m, n], 7.0),
            "ones": lambda: torch.ones([m, n], dtype=x.dtype, device=x.device),
        }
        out = make[factory]()
        for tm in tl.tile(m):
            out[tm, 1:] = x[tm, 1:]
        return out

    x = torch.randn(5, 6)
    out = run(kernel, x)
    assert out.dtype == x.dtype and out.shape == x.shape
    torch.testing.assert_close(out[:, 1:], x[:, 1:])
    fill = {"zeros": 0.0, "zeros_like": 0.0, "full": 7.0, "new_zeros": 0.0, "new_full": 7.0, "ones": 1.0}
    if factory in fill:
        torch.testing.assert_close(out[:, 0], torch.full([5], fill[factory]))


def test_factory_dtype_follows_torch_defaults():
    def kernel(x):
        n = x.size(0)
        idx = torch.zeros([n], dtype=torch.int64)
        flags = torch.full([n], True)
        default = torch.empty(n)
        for t in tl.tile(n):
            idx[t] = x[t]
            flags[t] = x[t] > 0
            default[t] = x[t]
        return idx, flags, default

    x = torch.tensor([1.5, -2.0, 3.0])
    idx, flags, default = run(kernel, x)
    assert (idx.dtype, flags.dtype, default.dtype) == (torch.int64, torch.bool, torch.float32)
    assert idx.tolist() == [1, -2, 3] and flags.tolist() == [True, False, True]


def test_views_of_host_tensors_are_kernel_operands():
    def kernel(x):
        m, n = x.shape
        out = torch.zeros(m * n, dtype=x.dtype, device=x.device)
        grid_view = out.view(m, n)
        xt = x.t()
        left = x[:, : n // 2]
        for tn, tm in tl.tile([n, m]):
            grid_view[tm, tn] = xt[tn, tm].t()
        return out.view(m, n), left.contiguous()

    x = torch.randn(6, 10)
    flat, left = run(kernel, x)
    torch.testing.assert_close(flat, x)
    torch.testing.assert_close(left, x[:, :5])
    program = tfn.make_ir(kernel)(x)
    assert "xt: f32[10, 6] strides=[1, 10] = x.t()" in str(program)


def test_python_arithmetic_on_sizes():
    def kernel(x):
        m, n = x.shape
        half = n // 2
        out = torch.empty([m, half], dtype=x.dtype, device=x.device)
        for tm, tn in tl.tile([0, 0], [m, half]):  # an explicit range may index a larger dimension
            out[tm, tn] = x[tm, tn] * (m + 2 * n - 1) / max(half, 1)
        return out

    x = torch.randn(5, 9)
    torch.testing.assert_close(run(kernel, x), x[:, :4] * (5 + 18 - 1) / 4)


def test_returning_a_tuple_and_a_python_number():
    def kernel(x):
        n = x.size(0)
        doubled, negated = torch.empty_like(x), torch.empty_like(x)
        for t in tl.tile(n):
            doubled[t] = x[t] * 2
            negated[t] = -x[t]
        return doubled, negated, n

    x = torch.randn(11)
    doubled, negated, n = run(kernel, x)
    torch.testing.assert_close(doubled, x * 2)
    torch.testing.assert_close(negated, -x)
    assert n == 11


@pytest.mark.parametrize("scale, shift, flag", [(2.0, 3, True), (0.5, -1, False)])
def test_int_bool_and_str_arguments_are_static_and_floats_are_inputs(scale, shift, flag):
    def kernel(x, scale: float, shift: int, flag: bool, mode: str = "relu"):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            v = x[t] * scale + shift
            if flag:
                v = torch.relu(v) if mode == "relu" else -v
            out[t] = v
        return out

    x = torch.randn(13)
    expected = x * scale + shift
    if flag:
        expected = torch.relu(expected)
    torch.testing.assert_close(run(kernel, x, scale, shift, flag), expected)
    program = str(tfn.make_ir(kernel)(x, scale, shift, flag))
    assert f"add v1, {shift}" in program and "scale: float" in program  # an int folded in, a float an input
    assert repr(scale) not in program


def test_keyword_and_several_tensor_arguments():
    def kernel(x, y, *, alpha=1.0, bias=None):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape):
            v = x[t] + alpha * y[t]
            if bias is not None:
                v = v + bias[t]
            out[t] = v
        return out

    x, y, b = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    torch.testing.assert_close(tfn.interpret(kernel)(x, y, alpha=0.5, bias=b), x + 0.5 * y + b)
    torch.testing.assert_close(tfn.interpret(kernel)(x, y), x + y)


def test_host_code_before_the_kernel():
    def kernel(x):
        w = x * 2 + 1
        out = torch.empty_like(x)
        for t in tl.tile(x.shape):
            out[t] = w[t]
        return out

    x = torch.randn(4, 6)
    torch.testing.assert_close(run(kernel, x), x * 2 + 1)
    assert host_prims(tfn.make_ir(kernel)(x)) == ["__mul__", "__add__", "empty_like", "kernel"]


@pytest.mark.parametrize("after, expected", [
    (lambda out, shape: out.sum(), lambda x: x.sum()),
    (lambda out, shape: out.view(shape), lambda x: x.view(2, 12)),
    (lambda out, shape: out.mean(dim=0, keepdim=True), lambda x: x.mean(0, keepdim=True)),
    (lambda out, shape: out.reshape(-1)[::2] * 3 - 1, lambda x: x.reshape(-1)[::2] * 3 - 1),
    (lambda out, shape: (out.amax(), out.T), lambda x: (x.amax(), x.T)),
    (lambda out, shape: torch.softmax(out, dim=-1), lambda x: torch.softmax(x, -1)),
])
def test_host_code_after_the_kernel_runs_on_its_outputs(after, expected):
    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape):
            out[t] = x[t]
        return after(out, [2, 12])

    x = torch.randn(4, 6)
    torch.testing.assert_close(run(kernel, x), expected(x))
    prims = host_prims(tfn.make_ir(kernel)(x))
    assert prims[:2] == ["empty_like", "kernel"] and len(prims) > 2


def test_several_top_level_loops_make_one_kernel():
    def kernel(x):
        a, b = torch.empty_like(x), torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            a[t] = x[t] + 1
        c = torch.empty_like(x)  # host code between loops that doesn't read kernel outputs: before the launch
        for t in tl.tile(x.size(0)):
            b[t] = x[t] * 2
            c[t] = x[t] - 1
        return a, b, c

    x = torch.randn(9)
    a, b, c = run(kernel, x)
    torch.testing.assert_close(a, x + 1)
    torch.testing.assert_close(b, x * 2)
    torch.testing.assert_close(c, x - 1)
    program = tfn.make_ir(kernel)(x)
    assert host_prims(program) == ["empty_like", "empty_like", "empty_like", "kernel"]
    grids = [e for e in program.kernel.params["region"].eqns if e.prim.name == "loop"]
    assert len(grids) == 2 and all(e.params["grid"] for e in grids)


def test_host_code_between_loops_reading_a_kernel_output_is_an_error():
    def kernel(x):
        a = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            a[t] = x[t] + 1
        total = a.sum()
        b = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            b[t] = x[t]
        return total, b

    with pytest.raises(TracingError, match=r"torch.sum\) reads a tensor the kernel writes.*Split the kernel"):
        tfn.make_ir(kernel)(torch.randn(9))


def test_captured_tensors_and_scalars_become_program_inputs():
    weight = torch.randn(7)
    scale = 3.0

    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            out[t] = x[t] * weight[t] * scale
        return out

    x = torch.randn(7)
    torch.testing.assert_close(run(kernel, x), x * weight * scale)
    program = tfn.make_ir(kernel)(x)
    assert [tensor for _, tensor in program.consts] == [weight]
    assert "# captured: weight: f32[7]" in str(program)


def test_kernel_without_tile_loops_is_plain_host_code():
    def kernel(x):
        return x.sum(dim=0) * 2

    x = torch.randn(3, 4)
    torch.testing.assert_close(tfn.interpret(kernel)(x), x.sum(0) * 2)
    assert tfn.make_ir(kernel)(x).kernel is None


def test_host_code_cannot_read_tensor_values():
    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            out[t] = x[t]
        if out.sum() > 0:
            return out
        return -out

    with pytest.raises(HostReadsDevice, match="host code reads the value of a tensor"):
        tfn.make_ir(kernel)(torch.randn(4))


def test_a_host_allocation_on_another_device_than_the_arguments_is_refused_at_its_line():
    def forgot_device(x):
        scratch = torch.zeros(x.shape[0], device="meta")  # (on a GPU: torch.zeros(n) without device=)
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            scratch[t] = x[t]
            out[t] = x[t]
        return out

    with pytest.raises(TracingError, match=r"torch.zeros\(...\) makes a tensor on meta, but the kernel's other "
                                           r"tensors are on cpu; pass device=") as info:
        tfn.jit(forgot_device)(torch.randn(8))
    assert "scratch = torch.zeros" in str(info.value)
