"""GEGLU (a port of Helion's geglu example): gelu(a) * b, with the tanh approximation of GELU
written out in float32 and the product rounded once to the input dtype."""
from __future__ import annotations

import math

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@helion.kernel()
def geglu(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    assert a.shape == b.shape, "geglu: a and b must have the same shape"
    out = torch.empty_like(a)
    for tile in hl.tile(a.size()):
        gate = a[tile].to(torch.float32)
        inner = SQRT_2_OVER_PI * (gate + 0.044715 * gate * gate * gate)
        gelu = 0.5 * gate * (1.0 + torch.tanh(inner))
        out[tile] = (gelu * b[tile].to(torch.float32)).to(out.dtype)
    return out


def reference_geglu(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (torch.nn.functional.gelu(a.float(), approximate="tanh") * b.float()).to(a.dtype)


def main() -> None:
    a, b = torch.randn([64, 512], dtype=torch.bfloat16), torch.randn([64, 512], dtype=torch.bfloat16)
    torch.testing.assert_close(geglu(a, b), reference_geglu(a, b), rtol=2e-2, atol=2e-2)
    print("geglu: OK")


if __name__ == "__main__":
    main()
