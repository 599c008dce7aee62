"""The kernels ConfigSpec's tests derive knob domains from, and small helpers for them."""
from __future__ import annotations

import torch

from tilefn import lang as tl
from tilefn.tune.spec import ConfigSpec
import tilefn as tfn
from kernels import add, layer_norm, matmul_plus as matmul, softmax  # noqa: F401  (the spec tests import them from here)

# --- the corpus ------------------------------------------------------------------------------
def looped_sum(x):
    """A row sum written as an inner loop over column tiles (no whole-row reduction)."""
    m, n = x.shape
    out = torch.empty([m], dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        acc = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(n):
            acc = acc + x[tm, tn].sum(dim=1)
        out[tm] = acc
    return out


def row_argmax(x):
    out = torch.empty([x.shape[0]], dtype=torch.int64, device=x.device)
    for tm in tl.tile(x.shape[0]):
        out[tm] = x[tm, :].argmax(dim=1)
    return out


def fixed_blocks(x):
    """An explicit block size (no knob) and one block symbol shared by two loops (one knob)."""
    m, n = x.shape
    out = torch.empty_like(x)
    bn = tl.register_block_size(n)
    for tm in tl.tile(m, block_size=4):
        total = tl.zeros([tm], dtype=torch.float32)
        for tn in tl.tile(n, block_size=bn):
            total = total + x[tm, tn].sum(dim=1)
        for tn in tl.tile(n, block_size=bn):
            out[tm, tn] = x[tm, tn] - total[:, None] / n
    return out


def tunable_sum(x):
    """Row sums: a tunable picks whole rows or column chunks, another the chunk width."""
    m, n = x.shape
    algo = tl.register_tunable("algo", ("whole", "chunked"))
    bn = tl.register_tunable("block_n", (8, 16, 32), default=16)
    out = torch.empty([m], dtype=torch.float32, device=x.device)
    for tm in tl.tile(m):
        if algo == "whole":
            out[tm] = x[tm, :].sum(dim=1)
        else:
            acc = tl.zeros([tm], dtype=torch.float32)
            for tn in tl.tile(n, block_size=bn):
                acc = acc + x[tm, tn].sum(dim=1)
            out[tm] = acc
    return out


def tall_tiles(x):
    """A tunable fixes the row block: with 4096 rows per tile only narrow column blocks fit."""
    out = torch.empty_like(x)
    rows = tl.register_tunable("rows", (1, 4096))
    for tm in tl.tile(x.shape[0], block_size=rows):
        for tn in tl.tile(x.shape[1]):
            out[tm, tn] = x[tm, tn] + 1
    return out


def spec_for(fn, *shapes) -> ConfigSpec:
    return ConfigSpec.of(tfn.make_ir(fn)(*[torch.empty(s) for s in shapes]))


def knob(spec, field, index=None):
    found = [k for k in spec.knobs if k.field == field and k.index == index]
    return found[0] if found else None


def is_pow2(v):
    return isinstance(v, int) and v > 0 and v & (v - 1) == 0
