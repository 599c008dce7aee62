"""Elementwise exp (a port of Helion's exp example): the smallest possible kernel."""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel()
def exp(x: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(x.size()):
        out[tile] = torch.exp(x[tile])
    return out


def reference_exp(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(x)


def main() -> None:
    x = torch.randn([1024, 1024])
    torch.testing.assert_close(exp(x), reference_exp(x))
    print("exp: OK")


if __name__ == "__main__":
    main()
