"""SwiGLU (a port of Helion's swiglu example): silu(a) * b, with silu written as a * sigmoid(a)
in float32."""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel()
def swiglu(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    assert a.shape == b.shape, "swiglu: a and b must have the same shape"
    out = torch.empty_like(a)
    for tile in hl.tile(a.size()):
        gate = a[tile].to(torch.float32)
        silu = gate * torch.sigmoid(gate)
        out[tile] = (silu * b[tile].to(torch.float32)).to(out.dtype)
    return out


def reference_swiglu(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (torch.nn.functional.silu(a.float()) * b.float()).to(a.dtype)


def main() -> None:
    a, b = torch.randn([64, 512], dtype=torch.bfloat16), torch.randn([64, 512], dtype=torch.bfloat16)
    torch.testing.assert_close(swiglu(a, b), reference_swiglu(a, b), rtol=2e-2, atol=2e-2)
    print("swiglu: OK")


if __name__ == "__main__":
    main()
