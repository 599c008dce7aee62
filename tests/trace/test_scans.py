"""Tracing of combine-function scans and reductions (tilefn/trace/combine.py, ops/scans.py) and of sort, topk
and gather (ops/sorting.py): the equations they bind, their printed form, and the errors for misuse."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ShapeError, TracingError
from tilefn.trace import primitives as p
from tilefn.trace.ir import walk_eqns


def kernel_eqns(fn, *args):
    return list(walk_eqns(tfn.make_ir(fn)(*args).kernel.params["region"].eqns))


def scan_rows(combine, reverse=False):
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.shape[0]):
            out[tm, :] = tl.associative_scan(combine, x[tm, :], 1, reverse=reverse)
        return out

    return kernel


def test_a_combine_function_is_traced_once_on_scalars_into_the_scan_equation():
    calls = []

    def combine(a, b):
        calls.append((a.shape, b.shape, a.dtype))
        return a * b + 1

    (scan,) = [e for e in kernel_eqns(scan_rows(combine, reverse=True), torch.randn(4, 8)) if e.prim is p.associative_scan_p]
    region = scan.params["combine"]
    assert calls == [((), (), torch.float32)]
    assert scan.params["axis"] == 1 and scan.params["reverse"] is True
    assert [e.prim for e in region.eqns] == [p.P["mul"], p.P["add"]] and len(region.params) == 2


def test_the_printed_program_shows_the_combine_body():
    text = str(tfn.make_ir(scan_rows(lambda a, b: torch.maximum(a, b)))(torch.randn(4, 8)))
    assert "associative_scan[axis=1, reverse=False]" in text and "combine(" in text and "maximum" in text


def test_tuple_combines_take_either_helion_form_and_results_get_the_element_dtypes():
    def packed(left, right):
        return left[0] + right[0], right[1]

    def unpacked(lv, li, rv, ri):
        return lv + rv, 1  # a Python number is a constant of the element's dtype

    for combine in (packed, unpacked):
        def kernel(x, combine=combine):
            out = torch.empty(x.shape, dtype=torch.int64)
            for tm in tl.tile(x.shape[0]):
                ids = torch.zeros_like(x[tm, :], dtype=torch.int64)
                _, out[tm, :] = tl.associative_scan(combine, (x[tm, :], ids), 1)
            return out

        (scan,) = [e for e in kernel_eqns(kernel, torch.randn(4, 8)) if e.prim is p.associative_scan_p]
        assert [v.type.dtype for v in scan.outputs] == [torch.float32, torch.int64]
        assert [r.type.dtype for r in scan.params["combine"].results] == [torch.float32, torch.int64]


def test_reduce_over_every_dim_reduces_one_axis_at_a_time_and_keeps_other():
    def kernel(x):
        out = torch.empty([x.shape[0]])
        for tm in tl.tile(x.shape[0]):
            out[tm] = tl.reduce(lambda a, b: a + b, x[tm, :, :], dim=None, other=0.0).sum() + torch.zeros([tm])
        return out

    reductions = [e for e in kernel_eqns(kernel, torch.randn(4, 8, 2)) if e.prim is p.combine_reduce_p]
    assert [e.params["axis"] for e in reductions] == [2, 1, 0]
    assert all(e.params["other"] == (0.0,) for e in reductions)


@pytest.mark.parametrize("combine, message", [
    (lambda a, b: a + outer_value[0], "uses a value from the kernel"),
    (lambda a, b: (a, b), "returned 2 values for a tuple of 1"),
    (lambda a, b: "text", "returned a str"),
    (lambda a, b: a[None], "must be a scalar"),
    (lambda a, b: torch.cumsum(a, 0), "may only compute elementwise"),
    (42, "must be callable"),
])
def test_bad_combine_functions_are_clear_errors(combine, message):
    def kernel(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.shape[0]):
            outer_value[:] = [x[tm, :]]
            out[tm, :] = tl.associative_scan(combine, x[tm, :], 1)
        return out

    with pytest.raises(TracingError, match=message):
        tfn.make_ir(kernel)(torch.randn(4, 8))


outer_value: list = []


def test_scanned_values_of_different_shapes_or_bad_other_are_refused():
    def shapes(x):
        out = torch.empty_like(x)
        for tm in tl.tile(x.shape[0]):
            a, _ = tl.associative_scan(lambda l, r: (l[0], r[1]), (x[tm, :], x[tm, :1]), 1)
            out[tm, :] = a
        return out

    def other(x):
        out = torch.empty(x.shape[0])
        for tm in tl.tile(x.shape[0]):
            out[tm] = tl.reduce(lambda a, b: a + b, x[tm, :], 1, other=(0, 1))
        return out

    with pytest.raises(ShapeError, match="values of one shape"):
        tfn.make_ir(shapes)(torch.randn(4, 8))
    with pytest.raises(TracingError, match="`other` must be a number"):
        tfn.make_ir(other)(torch.randn(4, 8))


def test_sort_and_topk_bind_last_axis_primitives_with_permutes_for_other_dims():
    def kernel(x):
        v, i = torch.empty_like(x), torch.empty(x.shape, dtype=torch.int64)
        t = torch.empty([x.shape[0], 3])
        for tm in tl.tile(x.shape[0]):
            v[tm, :], i[tm, :] = torch.sort(x[tm, :], dim=0, descending=True)
            t[tm, :] = torch.topk(x[tm, :], 3, largest=False).values
        return v, i, t

    eqns = kernel_eqns(kernel, torch.randn(4, 8))
    (sort,) = [e for e in eqns if e.prim is p.sort_p]
    (topk,) = [e for e in eqns if e.prim is p.topk_p]
    assert sort.params["descending"] is True and sum(e.prim is p.permute_p for e in eqns) == 3  # in; values and indices out
    assert topk.params == {"k": 3, "largest": False} and topk.outputs[1].type.dtype == torch.int64


def sorting_kernel(body):
    def kernel(x, idx):
        out = torch.empty_like(x)
        for tm in tl.tile(x.shape[0]):
            out[tm, :] = body(x[tm, :], idx[tm, :], tm)
        return out

    return kernel


@pytest.mark.parametrize("body, x_dtype, error, message", [
    (lambda v, i, tm: torch.sort(v)[0], torch.float64, TracingError, "32 bits or fewer"),
    (lambda v, i, tm: torch.topk(v, 9)[0], torch.float32, ShapeError, "k=9 is out of range"),
    (lambda v, i, tm: torch.topk(v, 2, dim=0)[0], torch.float32, ShapeError, "along a tile's dimension"),
    (lambda v, i, tm: torch.gather(v, 1, i.float()), torch.float32, TracingError, "index must be an integer"),
    (lambda v, i, tm: torch.gather(v, 1, i[:, None]), torch.float32, ShapeError, "dims"),
    (lambda v, i, tm: torch.gather(v.T, 1, i), torch.float32, ShapeError, "outside `dim` they must be the same"),
])
def test_bad_sorts_and_gathers_are_clear_errors(body, x_dtype, error, message):
    with pytest.raises(error, match=message):
        tfn.make_ir(sorting_kernel(body))(torch.randn(4, 8, dtype=x_dtype), torch.zeros(4, 8, dtype=torch.int64))


def test_gather_keeps_the_index_shape_and_the_source_dtype():
    def kernel(x, idx):
        out = torch.empty(idx.shape, dtype=x.dtype)
        for tm, tk in tl.tile(idx.shape):
            out[tm, tk] = torch.gather(x[tm, :], 1, idx[tm, tk])
        return out

    (gather,) = [e for e in kernel_eqns(kernel, torch.randn(4, 8).half(), torch.zeros(4, 3, dtype=torch.int32))
                 if e.prim is p.gather_p]
    assert gather.outputs[0].type.dtype == torch.float16 and gather.params["axis"] == 1
    assert gather.outputs[0].type.shape == gather.inputs[1].type.shape
