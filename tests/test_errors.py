"""User errors: each message names the user's file:line (here: this file, the offending statement) and the problem."""
import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import (ArgumentError, DataDependentControlFlow, HostReadsDevice, LoopCarryError, ShapeError,
                           TilefnError, TracingError, UnsupportedOp)

with open(__file__) as _f:
    _LINES = _f.read().splitlines()


def line_of(marker: str) -> int:
    """The line of this file that carries the comment `# <marker>`."""
    hits = [i for i, line in enumerate(_LINES, 1) if line.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, marker
    return hits[0]


def raises(error, kernel, *args, marker, match):
    """Tracing `kernel(*args)` raises `error` whose message starts at the marked line and says `match`."""
    with pytest.raises(error, match=match) as info:
        tfn.make_ir(kernel)(*args)
    message = str(info.value)
    where = f"{__file__}:{line_of(marker)}: "
    assert message.startswith(where), message
    statement = _LINES[line_of(marker) - 1].split("  #")[0].strip()
    assert statement in message and "^^^" in message  # the excerpt of the line, with a caret
    return info.value


X = torch.randn(10, 12)


# --- data-dependent control flow -----------------------------------------------------------------
def test_if_on_a_traced_value():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            v = x[tm, :]
            if v.sum(1) > 0:  # if-device
                v = -v
            out[tm, :] = v
        return out

    raises(DataDependentControlFlow, kernel, X, marker="if-device", match=r"`if` on a tile-shaped value.*torch\.where")


def test_while_on_a_traced_value():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            v = x[tm, :]
            while v.amax(1) > 1:  # while-device
                v = v / 2
            out[tm, :] = v
        return out

    raises(DataDependentControlFlow, kernel, X, marker="while-device", match="`while` on a tile-shaped value")


def test_bool_and_logical_operators_on_a_traced_value():
    def with_bool(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            flag = bool(x[tm, 0].sum())  # bool
            out[tm, :] = x[tm, :] * flag
        return out

    def with_and(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            v = x[tm, :]
            out[tm, :] = (v > 0) and (v < 1)  # and
        return out

    raises(DataDependentControlFlow, with_bool, X, marker="bool", match=r"bool\(\)")
    raises(DataDependentControlFlow, with_and, X, marker="and", match="and`/`or")


def test_python_numbers_from_traced_values():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            scale = x[tm, 0].amax().item()  # item-device
            out[tm, :] = x[tm, :] * scale
        return out

    raises(DataDependentControlFlow, kernel, X, marker="item-device", match=r"\.item\(\).*keep the computation in torch ops")


# --- unsupported operations -----------------------------------------------------------------------
def test_unsupported_torch_function_is_named():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            out[tm, :] = torch.lgamma(x[tm, :])  # lgamma
        return out

    raises(UnsupportedOp, kernel, X, marker="lgamma", match=r"torch\.lgamma is not supported inside a tile loop")


def test_unsupported_tensor_method_is_named():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            out[tm, :] = x[tm, :].kthvalue(2).values  # kthvalue
        return out

    raises(UnsupportedOp, kernel, X, marker="kthvalue", match=r"torch\.Tensor\.kthvalue is not supported")


# --- shapes -----------------------------------------------------------------------------------------
def test_indexing_with_too_many_indices():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            out[tm, :] = x[tm, :, 0]  # rank
        return out

    raises(ShapeError, kernel, X, marker="rank", match="indexing a 2-d tensor with 3 indices")


def test_storing_a_tile_of_the_wrong_shape():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            out[tm, 0] = x[tm, :]  # store-shape
        return out

    raises(ShapeError, kernel, X, marker="store-shape", match=r"storing a value of shape \[t0, 12\] into a slice of shape \[t0\]")


def test_pointwise_shapes_that_do_not_broadcast():
    def kernel(x, y):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            out[tm, :] = x[tm, :] + y[tm, :]  # broadcast
        return out

    raises(TracingError, kernel, X, torch.randn(10, 5), marker="broadcast", match=r"add: shapes \[t0, 12\], \[t0, 5\] don't broadcast")


def test_float_index():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            out[tm, :] = x[x[tm, 0], :]  # float-index
        return out

    raises(ShapeError, kernel, X, marker="float-index", match="tensors used as indices must be integers, got torch.float32")


# --- host code reading device values ------------------------------------------------------------------
def test_host_if_on_a_tensor_value():
    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape):
            out[t] = x[t]
        if out.sum() > 0:  # host-if
            return out
        return -out

    raises(HostReadsDevice, kernel, X, marker="host-if", match="host code reads the value of a tensor")


@pytest.mark.parametrize("read", ["cpu", "numpy"])
def test_host_reads_of_tensor_values(read):  # (.item(), int(), .tolist() of an argument's value: test_value_reads.py)
    def kernel(x):
        total = x.sum()
        if read == "cpu":
            value = total.cpu()  # host-read-cpu
        else:
            value = total.numpy()  # host-read-numpy
        return x * value

    raises(HostReadsDevice, kernel, X, marker=f"host-read-{read}", match="as an array")


@pytest.mark.parametrize("read", ["data_ptr", "storage_offset"])
def test_host_reads_of_a_tensor_address_are_refused(read):  # (were 0 while tracing: silently wrong)
    def kernel(x):
        out = torch.empty_like(x)
        if read == "data_ptr":
            shift = x.data_ptr() % 7  # host-address-data_ptr
        else:
            shift = x.storage_offset()  # host-address-storage_offset
        for t in tl.tile(x.shape):
            out[t] = x[t] + shift
        return out

    raises(HostReadsDevice, kernel, X[1:], marker=f"host-address-{read}", match="address")


def test_host_code_between_loops_reading_what_the_kernel_wrote():
    def kernel(x):
        a = torch.empty_like(x)
        for t in tl.tile(x.shape):
            a[t] = x[t]
        total = a.sum()  # between-loops
        for t in tl.tile(x.shape):
            a[t] = x[t] * 2
        return total

    raises(TracingError, kernel, X, marker="between-loops", match="reads a tensor the kernel writes")


# --- misuse of loops and values -------------------------------------------------------------------------
def test_value_used_after_its_loop():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            for tn in tl.tile(x.size(1)):
                v = x[tm, tn]
            out[tm, :] = v * 2  # after-loop
        return out

    raises(TracingError, kernel, X, marker="after-loop", match="used after that loop ended")


def test_whole_host_tensor_used_in_a_loop():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            out[tm, :] = torch.exp(x)  # whole-tensor
        return out

    raises(TracingError, kernel, X, marker="whole-tensor", match=r"torch\.exp on a whole host tensor inside a tile loop")


def test_ambiguous_loop_carry_points_at_the_loop():
    def kernel(x):
        out = torch.empty([x.size(0)], device=x.device)
        for tm in tl.tile(x.size(0)):
            acc = tl.zeros([tm], dtype=torch.float32)
            alias, _ = acc, tm  # (a plain `alias = acc` copies the value)
            for tn in tl.tile(x.size(1)):  # carry-loop
                acc = acc + x[tm, tn].sum(1) + alias
            out[tm] = acc
        return out

    raises(LoopCarryError, kernel, X, marker="carry-loop", match="`acc` and `alias` name the same value")


def test_python_number_carry_points_at_the_loop():
    def kernel(x):
        out = torch.empty([x.size(0)], device=x.device)
        for tm in tl.tile(x.size(0)):
            acc = 0
            for tn in tl.tile(x.size(1)):  # number-carry
                acc = acc + x[tm, tn].sum(1)
            out[tm] = acc
        return out

    raises(LoopCarryError, kernel, X, marker="number-carry", match="starts as a Python number")


def test_dynamic_bounds_on_the_outermost_loop():
    def kernel(x, offsets):
        out = torch.empty_like(x)
        for t in tl.tile(offsets[0], offsets[1]):  # dynamic-grid
            out[t] = x[t]
        return out

    raises(ShapeError, kernel, torch.randn(8), torch.tensor([0, 8]), marker="dynamic-grid",
           match="tile loop starts must be an int or an integer device scalar")


def test_float_loop_bounds():
    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0) / 2):  # float-bound
            out[t] = x[t]
        return out

    raises(ShapeError, kernel, torch.randn(8), marker="float-bound", match="tile loop ends must be an int")


def test_break_out_of_a_tile_loop():
    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            out[t] = x[t]
            break
        return out

    with pytest.raises(TracingError, match="did not finish"):
        tfn.make_ir(kernel)(torch.randn(8))


def test_returning_a_device_value():
    def kernel(x):
        for t in tl.tile(x.size(0)):
            v = x[t]
        return v  # return-device

    with pytest.raises(TracingError, match="returns a device value"):
        tfn.make_ir(kernel)(torch.randn(8))


def test_lang_outside_a_kernel():
    with pytest.raises(TracingError, match="only be used inside a kernel"):
        tl.zeros([4])


def test_extra_mask_must_be_boolean():
    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            out[t] = tl.load(x, [t], extra_mask=t.index)  # int-mask
        return out

    raises(ShapeError, kernel, torch.randn(8), marker="int-mask", match="extra_mask must be a boolean device value")


# --- arguments ------------------------------------------------------------------------------------
def copy(x, y=None):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape):
        out[t] = x[t]
    return out


def test_an_object_argument_names_the_argument_and_the_call():
    with pytest.raises(ArgumentError, match=r"argument `y` of copy\(\) is a object") as info:
        tfn.make_ir(copy)(X, object())  # object-arg
    assert str(info.value).startswith(f"{__file__}:{line_of('object-arg')}: ")


def test_an_object_inside_a_list_argument_names_where_it_is():
    with pytest.raises(ArgumentError, match=r"argument `y` of copy\(\) holds at \[1\]\[0\] a object") as info:
        tfn.make_ir(copy)(X, [1, (object(),)])  # object-in-list
    assert str(info.value).startswith(f"{__file__}:{line_of('object-in-list')}: ")


def test_wrong_number_of_arguments():
    with pytest.raises(ArgumentError, match=r"copy\(\): too many positional arguments"):
        tfn.make_ir(copy)(X, X, X)


def test_strings_dtypes_and_devices_are_static_arguments():
    def kernel(x, mode: str, dtype: torch.dtype, device: torch.device):
        out = torch.empty(x.shape, dtype=dtype, device=device)
        for t in tl.tile(x.size(0)):
            out[t] = torch.exp(x[t]) if mode == "exp" else x[t]
        return out

    x = torch.randn(6)
    out = tfn.interpret(kernel)(x, "exp", torch.float64, torch.device("cpu"))
    torch.testing.assert_close(out, torch.exp(x).double())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device: a CUDA GPU")
def test_tensors_on_several_devices():
    with pytest.raises(ArgumentError, match=r"tensor arguments of copy\(\) are on several devices.*cuda"):
        tfn.make_ir(copy)(X, torch.empty(10, 12, device="cuda"))


@pytest.mark.xfail(reason="jit.JitFunction.trace_and_bind re-raises the error itself, so its frame and "
                          "make_ir's stay in the traceback (tilefn/jit.py)", strict=True)
def test_errors_are_tilefn_errors_without_internal_frames():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            out[tm, :] = torch.lgamma(x[tm, :])
        return out

    with pytest.raises(TilefnError) as info:
        tfn.make_ir(kernel)(X)
    assert info.value.__traceback__ is not None
    frames = [f.filename for f in __import__("traceback").extract_tb(info.value.__traceback__)]
    assert all("/tilefn/" not in f for f in frames), frames


# --- arguments torch has no kernel for, kernels of every callable kind -----------------------------
def add_rows(x, y):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] + y[t]
    return out


@pytest.mark.parametrize("make, match", [
    (lambda: torch.randn(8, device="meta"), r"argument `x` of add_rows\(\) is on the meta device"),
    (lambda: torch.randn(8).to_sparse(), r"argument `x` of add_rows\(\) is a sparse_coo tensor; .*to_dense\(\)"),
    (lambda: torch.randn(8, dtype=torch.complex64), r"argument `x` of add_rows\(\) is torch.complex64; .*view_as_real"),
    (lambda: torch.zeros(8, dtype=torch.uint32), r"has dtype torch.uint32, which tilefn kernels do not support"),
])
def test_tensors_kernels_cannot_take_are_named_with_what_to_do(make, match):
    x = make()
    with pytest.raises(ArgumentError, match=match) as info:
        tfn.jit(add_rows)(x, x)
    assert "test_errors.py" in str(info.value.source)  # the call site: the argument is the cause


def test_partials_lambdas_and_callable_objects_are_kernels():
    import functools

    x, y = torch.randn(8), torch.randn(8)

    class AddRows:
        def __call__(self, a, b):
            return add_rows(a, b)

    torch.testing.assert_close(tfn.jit(functools.partial(add_rows, y=y))(x), x + y)
    torch.testing.assert_close(tfn.jit(functools.partial(add_rows, y=y))(x, y=x), x + x)
    torch.testing.assert_close(tfn.jit(lambda a, b: add_rows(a, b))(x, y), x + y)
    torch.testing.assert_close(tfn.jit(AddRows())(x, y), x + y)
    torch.testing.assert_close(tfn.interpret(AddRows())(x, y), x + y)
    assert "def lambda(" not in tfn.jit(lambda a, b: add_rows(a, b)).lower(x, y).source


def test_numpy_on_a_tile_runs_as_torch_or_is_refused_clearly():
    import numpy as np

    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = np.maximum(x[t], 0) * np.float32(2.0)
        return out

    x = torch.randn(16)
    torch.testing.assert_close(tfn.jit(kernel)(x), torch.clamp(x, min=0) * 2)

    def sorts(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = np.sort(x[t])  # numpy function
        return out

    raises(UnsupportedOp, sorts, x, marker="numpy function", match=r"np.sort on a traced value")


def test_break_in_a_tile_loop_names_the_loop():
    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):  # unfinished loop
            out[t] = x[t]
            break
        return out

    raises(TracingError, kernel, torch.randn(8), marker="unfinished loop", match="did not finish")
