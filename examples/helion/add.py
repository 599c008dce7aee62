"""Elementwise add with PyTorch broadcasting and type promotion (a port of Helion's add example).

Host code broadcasts the operands and allocates the promoted output; one tile loop over every
output dimension adds them.
"""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel()
def add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x, y = torch.broadcast_tensors(x, y)          # host code: views, no copies
    out = torch.empty(x.shape, dtype=torch.promote_types(x.dtype, y.dtype), device=x.device)
    for tile in hl.tile(out.size()):              # one tile per output dimension
        out[tile] = x[tile] + y[tile]
    return out


def reference_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.add(x, y)


def main() -> None:
    x = torch.randn([512, 384], dtype=torch.float16)
    y = torch.randn([384], dtype=torch.float32)   # broadcast along rows, promoted to float32
    torch.testing.assert_close(add(x, y), reference_add(x, y))
    print("add: OK")


if __name__ == "__main__":
    main()
