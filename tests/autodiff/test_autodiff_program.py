"""The backward Program: its printed form, host code around the kernel, and the kernels it refuses."""
from __future__ import annotations

import re

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ArgumentError, UnsupportedOp
from vjp_kernels import cross_entropy, embedding, softmax

F64 = torch.float64


def test_printed_backward_of_softmax_reads_as_a_recompute_then_a_transpose():
    x = torch.randn(6, 10, dtype=F64)
    text = str(tfn.make_ir(tfn.vjp(softmax))(x, x))
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "def softmax_vjp(x: f64[6, 10], grad_output: f64[6, 10]):"
    # (one store covers it: no zero fill)
    assert "grad_x: f64[6, 10] = torch.empty([6, 10], device='cpu', dtype=torch.float64)" in lines
    body = lines[lines.index(next(line for line in lines if line.startswith("grid tm in tile(0, 6"))) + 1:]
    ops = [re.sub(r"^.*= ", "", line).split()[0] for line in body if "=" in line]
    loads = [i for i, line in enumerate(body) if " = load " in line]
    assert [body[i].split(" = load ")[1] for i in loads] == ["x[tm, 0:10]", "grad_output[tm, 0:10]"]
    forward = ops[:ops.index("load", 1)]  # the forward recomputed, then the cotangent's load
    assert forward == ["load", "reduce_max[axis=1,", "stop_gradient", "sub", "exp", "reduce_sum[axis=1,", "div"]
    assert "broadcast_to[shape=(tm," in " ".join(ops)  # a reduction's transpose
    assert "eq" not in ops  # (the max is only a shift, read through stop_gradient: no ties to split)
    assert body[-2] == "store grad_x[tm, 0:10] <- " + body[-3].split(":")[0] and body[-1] == "return (grad_x)"
    assert not any("store out" in line or "empty_like" in line for line in lines)  # the forward's output is gone


def test_host_code_after_the_kernel_is_pulled_back_before_it():
    logits, labels = torch.randn(4, 9, dtype=F64), torch.tensor([0, 8, 3, 3])
    text = str(tfn.make_ir(tfn.vjp(cross_entropy))(logits, labels, torch.tensor(1.0, dtype=F64)))
    lines = [line.strip() for line in text.splitlines()]
    assert "grad_losses: f64[4] = pullback_outputs(grad_output)" in lines
    assert lines[-1] == "return (grad_logits_1, None)"
    # (the gather's lanes outside their row are added after the kernel: test_row_fusion.py)
    scatter = "add_stray(grad_logits, flat_logits_positions, grad_flat_logits_values)"
    assert f"grad_logits_1: f64[4, 9] = {scatter}" in lines


def test_views_before_and_after_the_kernel():
    indices, weight = torch.randint(0, 5, (2, 3)), torch.randn(5, 4, dtype=F64)
    g = torch.randn(2, 3, 4, dtype=F64)
    got = tfn.vjp(embedding)(indices, weight, g)
    want = torch.zeros_like(weight).index_add_(0, indices.reshape(-1), g.reshape(-1, 4))
    torch.testing.assert_close(got[1], want)


@tfn.jit
def squared_after(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape):
        out[t] = x[t] * 2
    return out * out


def test_nonlinear_host_code_after_the_kernel_is_refused_at_its_line():
    x = torch.randn(3, 4)
    with pytest.raises(UnsupportedOp, match=r"host call `__mul__` on a differentiated tensor") as info:
        tfn.vjp(squared_after)(x, x)
    assert "return out * out" in str(info.value)


@tfn.jit
def accumulate_in_place(x, out):
    for t in tl.tile(x.shape):
        out[t] = out[t] + x[t]
    return out


def test_a_kernel_reading_what_it_writes_is_refused():
    x = torch.randn(3, 4)
    with pytest.raises(UnsupportedOp, match="reads a tensor it also writes"):
        tfn.vjp(accumulate_in_place)(x, x.clone(), x)


def test_one_cotangent_per_returned_tensor():
    x = torch.randn(3, 4, dtype=F64)
    with pytest.raises(ArgumentError, match="takes the forward's arguments, then 1 cotangent"):
        tfn.vjp(softmax)()
    with pytest.raises(ArgumentError, match="returns 1 tensor"):
        tfn.make_ir(tfn.vjp(softmax, outputs=2))(x, x, x)


def test_host_pullbacks_refuse_to_run_where_autograd_records_nothing():
    """Called on a tensor that requires grad, the backward runs as a custom op below autograd: its host
    pullbacks would see no graph and give zeros, so they refuse instead."""
    logits, labels = torch.randn(4, 9, dtype=F64).requires_grad_(True), torch.tensor([0, 8, 3, 3])
    with pytest.raises(UnsupportedOp, match="records nothing"):
        tfn.vjp(cross_entropy)(logits, labels, torch.tensor(1.0, dtype=F64))
    got = tfn.vjp(cross_entropy)(logits.detach(), labels, torch.tensor(1.0, dtype=F64))[0]
    leaf = logits.detach().clone().requires_grad_(True)
    torch.testing.assert_close(got, torch.autograd.grad(torch.nn.functional.cross_entropy(leaf, labels), leaf)[0])
