"""LayerNorm forward over the last dimension (a port of Helion's layer_norm example).

Whole rows per program; statistics in float32, then the affine transform. `layer_norm_fwd` takes
both statistics from one `torch.var_mean` call, as Helion's example does; tilefn has no
`var_mean` inside tile loops yet, so `layer_norm_fwd_mean_var` computes them with two calls.
"""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel()
def layer_norm_fwd(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    m, n = x.size()
    assert weight.size(0) == n and bias.size(0) == n, "weight and bias must match the last dimension"
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tile_m in hl.tile(m):
        rows = x[tile_m, :].to(torch.float32)
        var, mean = torch.var_mean(rows, dim=-1, keepdim=True, correction=0)
        normalized = (rows - mean) * torch.rsqrt(var + eps)
        out[tile_m, :] = normalized * weight[:].to(torch.float32) + bias[:].to(torch.float32)
    return out


@helion.kernel()
def layer_norm_fwd_mean_var(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                            eps: float = 1e-5) -> torch.Tensor:
    m, n = x.size()
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tile_m in hl.tile(m):
        rows = x[tile_m, :].to(torch.float32)
        mean = torch.mean(rows, dim=-1, keepdim=True)
        centered = rows - mean
        var = torch.mean(centered * centered, dim=-1, keepdim=True)
        normalized = centered * torch.rsqrt(var + eps)
        out[tile_m, :] = normalized * weight[:].to(torch.float32) + bias[:].to(torch.float32)
    return out


def reference_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    return torch.nn.functional.layer_norm(x, [x.size(-1)], weight, bias, eps)


def main() -> None:
    x = torch.randn([128, 768], dtype=torch.float16)
    weight, bias = torch.randn([768], dtype=torch.float16), torch.randn([768], dtype=torch.float16)
    torch.testing.assert_close(layer_norm_fwd_mean_var(x, weight, bias), reference_layer_norm(x, weight, bias),
                               rtol=1e-2, atol=1e-2)
    print("layer_norm: OK")


if __name__ == "__main__":
    main()
