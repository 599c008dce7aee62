"""Lowering of matrix products (`dot_p`): tl.dot, or products summed over k where tl.dot cannot go."""
from __future__ import annotations

import torch

from . import unit_axes
from .emit import Emitter, tl_dtype
from ..trace.primitives import dot_p
from .float8 import FLOAT8

_HALF = (torch.float16, torch.bfloat16)


def accumulator_dtype(dtype: torch.dtype) -> torch.dtype:
    """What a product of `dtype` operands sums in: float64 for float64, float32 for the other floats
    (float8 included, as Triton's tensor-core dots do), int64 for int64, int32 for other integers."""
    if dtype in (torch.float64, torch.int64):
        return dtype
    return torch.float32 if dtype.is_floating_point else torch.int32


def lower_dot(em: Emitter, eqn) -> None:
    a, b, *acc = eqn.inputs
    dtype = a.type.dtype
    wide = accumulator_dtype(dtype)
    k_dim = a.type.shape[-1]
    k_mask = em.dim_mask(k_dim)
    flat = takes_tl_dot(em, eqn) and batch_of_one(em, eqn)  # a 3-d product of one batch as a 2-d tl.dot
    rank = 2 if flat else a.type.rank
    operands = []
    for operand, axis in ((a, rank - 1), (b, rank - 2)):
        text = _flat_operand(em, operand) if flat else em(operand)
        if k_mask is not None and operand not in em.zero_padded:
            text = f"tl.where({em.expand(k_mask, axis, rank)}, {text}, 0)"
        operands.append(text)
    if em.interpret and (dtype in _HALF or dtype in FLOAT8):  # the CPU interpreter has no half/float8 math
        operands = [em.converted(o, dtype, torch.float32) for o in operands]
    elif dtype in FLOAT8 and em.lanes(k_dim) < 32:  # float8 tl.dot needs k >= 32; float16 holds every float8 value
        operands = [em.converted(o, dtype, torch.float16) for o in operands]
    acc_text = None
    if acc and acc[0] in em.squeezed:
        acc_text = em(acc[0])
    elif acc and flat and acc[0] in em.unit_free and acc[0].type.dtype == wide:
        acc_text = em.unit_free[acc[0]][0]
    elif acc:
        acc_text = em.converted(em(acc[0]), acc[0].type.dtype, wide)
        if flat:  # (the batch of one dropped by a sum, not a reshape: see below)
            acc_text = f"tl.sum({acc_text}, axis=0)"
    if takes_tl_dot(em, eqn):
        expr = _tl_dot(em, eqn, operands, wide, acc_text)
    else:
        expr = _summed_products(em, a.type.rank, operands, wide, acc_text)
    expr, out = em.converted(expr, wide, eqn.params["out_dtype"]), eqn.outputs[0]
    if flat and out not in em.squeezed:
        # the result gains its batch of one by expand_dims, not a reshape: Triton 3.6's layout pass fails
        # (PassManager::run, RemoveLayoutConversions) on loop carries reshaped around tl.dot (Helion's attention)
        unit_axes.assign(em, out, expr, (0,))
    else:
        em.assign(out, expr)


def _flat_operand(em: Emitter, operand) -> str:
    """A batch-of-one operand [1, r, c] as 2-d: its unit-free form (a load indexing the batch as a scalar),
    else reshaped."""
    form = em.unit_free.get(operand)
    if form is not None and form[1] == (0,):
        return form[0]
    r, c = (em.dim_expr(d) for d in operand.type.shape[1:])
    return f"tl.reshape({em(operand)}, [{r}, {c}])"


def takes_tl_dot(em: Emitter, eqn) -> bool:
    """Whether a product lowers to tl.dot: dims of 16 lanes or more, floats or int8 (k >= 32 on the GPU)."""
    a, b = eqn.inputs[:2]
    dtype, k_dim = a.type.dtype, a.type.shape[-1]
    small = min(em.lanes(d) for d in (a.type.shape[-2], k_dim, b.type.shape[-1])) < 16
    short_int8 = dtype == torch.int8 and not em.interpret and em.lanes(k_dim) < 32  # (the GPU's int8 dot: k >= 32)
    return not (small or short_int8 or not (dtype.is_floating_point or dtype == torch.int8))  # (no other ints)


def _tl_dot(em: Emitter, eqn, operands, wide, acc_text) -> str:
    a = eqn.inputs[0]
    precision = f', input_precision="{eqn.params["precision"]}"' if a.type.dtype == torch.float32 else ""
    acc_arg = f", {acc_text}" if acc_text is not None else ""
    return f"tl.dot({operands[0]}, {operands[1]}{acc_arg}{precision}, out_dtype={tl_dtype(wide)})"


def batch_of_one(em: Emitter, eqn) -> bool:
    """A 3-d product whose batch has one lane here (lowered as a 2-d tl.dot)."""
    a, b = eqn.inputs[:2]
    return a.type.rank == 3 and em.lanes(a.type.shape[0]) == 1 and em.lanes(b.type.shape[0]) == 1


def squeezed_carries(em: Emitter, region) -> dict:
    """Carries of a loop body (param -> its dot) that only a batch-of-one tl.dot reads, as its float32
    accumulator, and whose new value is that dot's: the loop carries them 2-d (reshaped once before and
    after it), so the loop is a plain 2-d matmul loop. Reshaping the carry around each dot instead costs
    layout conversions every iteration (bmm ran at 16% of cuBLAS on the H200) or fails to compile."""
    n_tiles = len(region.params) - len(region.results)
    found = {}
    for param, result in zip(region.params[n_tiles:], region.results):
        users = [e for e in region.eqns if any(x is param for x in e.inputs)]
        dot = users[0] if len(users) == 1 else None
        if (dot is None or dot.prim is not dot_p or len(dot.inputs) != 3 or dot.inputs[2] is not param
                or dot.outputs[0] is not result or param.type.dtype != torch.float32
                or dot.params["out_dtype"] != torch.float32 or not batch_of_one(em, dot) or not takes_tl_dot(em, dot)
                or any(result is x for e in region.eqns for x in e.inputs)
                or sum(r is result for r in region.results) != 1):
            continue
        found[param] = dot
    return found


def _summed_products(em: Emitter, rank: int, operands, wide, acc_text) -> str:
    """sum over k of a[..., :, k] * b[..., k, :], with k leading: for dims under tl.dot's 16 lanes and for
    integers other than int8 (uint8 included), which tl.dot refuses. Triton (3.6, GPU)
    rewrites the k-in-the-middle form, sum(a[:, :, None] * b[None, :, :], axis=1), into a tf32 tl.dot
    that is wrong for k < 8."""
    x, y = operands
    batch = [":"] * (rank - 2)
    perm = tuple(range(rank - 2)) + (rank - 1, rank - 2)
    wide_tl = tl_dtype(wide)
    expr = (f"tl.sum(tl.permute({x}.to({wide_tl}), {perm})[{', '.join(batch + [':', ':', 'None'])}] * "
            f"{y}.to({wide_tl})[{', '.join(batch + [':', 'None', ':'])}], axis={rank - 2})")
    return f"{acc_text} + {expr}" if acc_text is not None else expr
