"""RMSNorm forward (a port of Helion's rms_norm example): the normalised rows and, for a backward
pass, the reciprocal RMS of each row."""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel()
def rms_norm_fwd(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    m, n = x.size()
    assert weight.size(0) == n, f"weight has {weight.size(0)} entries, rows have {n}"
    out = torch.empty_like(x)
    inv_rms = torch.empty([m], dtype=torch.float32, device=x.device)
    for tile_m in hl.tile(m):
        rows = x[tile_m, :].to(torch.float32)
        scale = torch.rsqrt(torch.mean(rows * rows, dim=-1) + eps)
        out[tile_m, :] = (rows * scale[:, None] * weight[:].to(torch.float32)).to(out.dtype)
        inv_rms[tile_m] = scale
    return out, inv_rms


def reference_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5):
    x32 = x.float()
    inv_rms = torch.rsqrt(x32.pow(2).mean(-1) + eps)
    return (x32 * inv_rms[:, None] * weight.float()).to(x.dtype), inv_rms


def main() -> None:
    x, weight = torch.randn([128, 1024], dtype=torch.float16), torch.randn([1024], dtype=torch.float16)
    torch.testing.assert_close(rms_norm_fwd(x, weight), reference_rms_norm(x, weight), rtol=1e-2, atol=1e-2)
    print("rms_norm: OK")


if __name__ == "__main__":
    main()
