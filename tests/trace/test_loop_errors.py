"""Misused tile loops are refused at the user's line, with Helion's distinctions (tilefn/errors.py):
a backwards range, a tile where a bound belongs, one tile unpacked as two, `for/while ... else`
(trace/statements.py), a batched matrix product over mismatched batch tiles; values and tiles used after
their loop, a tile as a Python bool, and a kernel called while another is traced."""
import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import (DotBatchMismatch, InvalidTileRange, ShapeError, TileBoundError, TileUnpackError,
                           TracingError, UnsupportedStatement)

with open(__file__) as _f:
    _LINES = _f.read().splitlines()


def raises(error, kernel, *args, marker, match):
    """Tracing `kernel(*args)` raises `error` naming this file's line marked `# <marker>` and saying `match`."""
    with pytest.raises(error, match=match) as info:
        tfn.make_ir(kernel)(*args)
    [line] = [i for i, text in enumerate(_LINES, 1) if text.rstrip().endswith(f"# {marker}")]
    assert str(info.value).startswith(f"{__file__}:{line}: "), str(info.value)
    assert "^^^" in str(info.value)
    return info.value


def test_a_backwards_static_range():
    def kernel(x):
        start, end = x.size(0), x.size(1)
        for _t in tl.tile(start, end):  # backwards
            pass
        return x

    error = raises(InvalidTileRange, kernel, torch.randn(12, 4), marker="backwards", match="begin=12, end=4")
    assert isinstance(error, ShapeError)


def test_an_empty_range_is_no_error():
    def kernel(x):
        for t in tl.tile(3, 3):
            x[t] = x[t] + 1
        return x

    x = torch.randn(4)
    assert torch.equal(tfn.interpret(kernel)(x.clone()), x)


def test_one_tile_unpacked_as_two():
    def kernel(x):
        for _tm, _tn in tl.tile(x.size(0), x.size(1)):  # unpack
            pass
        return x

    raises(TileUnpackError, kernel, torch.randn(2, 8), marker="unpack", match=r"tl.tile\(\[m, n\]\)")


def test_a_tile_as_a_loop_bound():
    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            for u in tl.tile(t):  # bound
                out[u] = x[u]
        return out

    raises(TileBoundError, kernel, torch.randn(8), marker="bound", match=r"tl.tile\(t.begin, t.end\)")


def test_bad_bound_types_are_shape_errors():
    def kernel(x):
        for t in tl.tile(2.5):  # float
            x[t] = x[t]
        return x

    raises(ShapeError, kernel, torch.randn(8), marker="float", match="must be an int")


def test_for_else_on_a_tile_loop():
    def kernel(x):
        for t in tl.tile(x.size(0)):
            x[t] = x[t] + 1
        else:  # for-else
            x[0] = 0
        return x

    raises(UnsupportedStatement, kernel, torch.randn(8), marker="for-else", match="`for ... else` on a tile loop")


def test_while_else_inside_a_tile_loop():
    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            flag = 0
            while flag == 0:
                flag = 1
            else:  # while-else
                out[t] = x[t]
        return out

    raises(UnsupportedStatement, kernel, torch.randn(8), marker="while-else", match="`while ... else` inside")


def test_plain_python_loops_in_a_tile_loop_still_trace():
    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            acc = x[t]
            for _ in range(3):
                acc = acc * 2
            out[t] = acc
        else_value = 1  # a name, not an `else:`
        return out if else_value else None

    x = torch.randn(8)
    torch.testing.assert_close(tfn.interpret(kernel)(x), x * 8)


def test_dot_over_mismatched_batch_tiles():
    def kernel(q, k):
        m, _, d = q.shape
        n = k.size(0)
        out = torch.zeros([m, 3, 3], device=q.device)
        for tm in tl.tile(m):
            a = q[tm, :, :]
            for tn in tl.tile(n):
                b = k[tn, :, :].transpose(1, 2)
                out[tm, :, :] = tl.dot(a, b)  # batch
        return out

    raises(DotBatchMismatch, kernel, torch.randn(4, 3, 8), torch.randn(4, 3, 8), marker="batch",
           match="batch dimensions t0 and t1 differ")


def test_assigning_into_a_device_value():
    def kernel(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            v = x[t] * 2
            v[0] = 1  # setitem
            out[t] = v
        return out

    raises(TracingError, kernel, torch.randn(8), marker="setitem", match="torch.where")


def test_value_stored_after_its_loop_says_so_before_its_shape():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            for tn in tl.tile(x.size(1)):
                v = x[tm, tn] * 2
            out[tm, :] = v  # stored-after-loop
        return out

    raises(TracingError, kernel, torch.randn(10, 12), marker="stored-after-loop", match="used after that loop ended")


def test_tile_used_after_its_loop():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            for tn in tl.tile(x.size(1)):
                out[tm, tn] = x[tm, tn]
            out[tm, tn] = x[tm, tn] + 1  # tile-after-loop
        return out

    raises(TracingError, kernel, torch.randn(10, 12), marker="tile-after-loop",
           match="a tile is used after its tile loop ended")


def test_tile_used_as_a_python_bool():
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.size(0)):
            if tm:  # tile-bool
                out[tm, :] = x[tm, :]
        return out

    raises(TracingError, kernel, torch.randn(10, 12), marker="tile-bool",
           match=r"a tile is used as a Python bool .*tile\.index < n")


@tfn.jit
def _add_one(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.size(0)):
        out[t] = x[t] + 1
    return out


def test_kernel_called_inside_a_kernel():
    def on_host(x):
        y = _add_one(x)  # nested-host
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            out[t] = y[t]
        return out

    def in_loop(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            out[t] = _add_one(x[t])  # nested-loop
        return out

    raises(TracingError, on_host, torch.randn(10), marker="nested-host",
           match=r"the kernel _add_one\(\) is called while another")
    raises(TracingError, in_loop, torch.randn(10), marker="nested-loop", match="kernels do not nest")


def test_helion_kernel_called_inside_a_kernel():
    import tilefn.helion as helion

    inner = helion.kernel(autotune_effort="none")(_add_one.fn)

    def outer(x):
        out = torch.empty_like(x)
        for t in tl.tile(x.size(0)):
            out[t] = inner(x[t])  # nested-helion
        return out

    raises(TracingError, outer, torch.randn(10), marker="nested-helion", match="kernels do not nest")
