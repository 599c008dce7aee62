"""tfn.vjp_split's functions: the backward's `residuals` parameter (positional or by name, a clear error
for what the forward did not return), tuning it, and its op (a `Tensor[]` of residuals) passing opcheck."""
from __future__ import annotations

import pytest
import torch

import tilefn as tfn
from tilefn.errors import ArgumentError
from tilefn.torch_op import op_of
from test_residuals import _autograd, _case


def test_residuals_by_name_and_wrong_ones_refused():
    kernel, args, _ = _case("rms_norm", "rms_norm")
    fwd, bwd = tfn.vjp_split(kernel)
    out, residuals = fwd(*args)
    cotangent = torch.randn_like(out)
    by_name = bwd(*args, residuals=residuals, grad_output=cotangent)
    torch.testing.assert_close(by_name[0], bwd(*args, residuals, cotangent)[0])
    with pytest.raises(ArgumentError, match="residuals"):
        bwd(*args, (), cotangent)
    with pytest.raises(ArgumentError, match="tuple of tensors"):
        bwd(*args, residuals[0], cotangent)


def test_the_backward_from_residuals_tunes():
    kernel, args, floating = _case("rms_norm", "rms_norm")
    fwd, bwd = tfn.vjp_split(kernel)
    out, residuals = fwd(*args)
    cotangent = torch.randn_like(out)
    small, large = tfn.Config(block_sizes=[2]), tfn.Config(block_sizes=[8])
    tuned = tfn.tune(bwd, configs=[small, large], use_cache=False, verbose=False)
    got = tuned(*args, residuals, cotangent)
    assert tuned.known_config(*args, residuals, cotangent) in (small, large)
    for i, want in zip(floating, _autograd("rms_norm", args, floating, cotangent)):
        torch.testing.assert_close(got[i].double(), want, atol=2e-5, rtol=2e-4)


def test_the_backward_op_takes_the_residuals_as_a_tensor_list():
    kernel, args, _ = _case("layer_norm", "layer_norm")
    fwd, bwd = tfn.vjp_split(kernel)
    out, residuals = fwd(*args)
    op, tensors = op_of(bwd, *args, residuals, torch.randn_like(out))
    assert "Tensor[] residuals" in str(op._schema)
    torch.library.opcheck(op, tensors)
