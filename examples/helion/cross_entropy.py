"""Per-sample cross-entropy loss (a port of Helion's cross_entropy example).

The logit of each row's label is gathered with `hl.load` from a flat view of the logits; the
log-sum-exp of each row is computed from its whole row.
"""
from __future__ import annotations

import torch

import tilefn.helion as helion
import tilefn.helion.language as hl


@helion.kernel(ignore_warnings=[helion.exc.TensorOperationInWrapper])
def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    n, v = logits.shape
    losses = torch.zeros([n], dtype=logits.dtype, device=logits.device)
    logits_flat = logits.view(-1)
    for tile_n in hl.tile(n):
        target_index = tile_n.index * v + labels[tile_n]
        target_logit = hl.load(logits_flat, [target_index])
        rows = logits[tile_n, :]
        row_max = torch.amax(rows, dim=-1, keepdim=True)
        sum_exp = torch.sum(torch.exp(rows - row_max), dim=-1, keepdim=True)
        log_sum_exp = row_max.squeeze(-1) + torch.log(sum_exp.squeeze(-1))
        losses[tile_n] = log_sum_exp - target_logit
    return losses


def reference_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits, labels, reduction="none")


def main() -> None:
    logits = torch.randn([128, 1000])
    labels = torch.randint(0, 1000, [128], dtype=torch.long)
    torch.testing.assert_close(cross_entropy(logits, labels), reference_cross_entropy(logits, labels),
                               rtol=1e-4, atol=1e-4)
    print("cross_entropy: OK")


if __name__ == "__main__":
    main()
