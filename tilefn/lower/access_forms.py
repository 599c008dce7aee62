"""Which indexing forms a load or store can take, from the access alone (whatever the block sizes).

Pointers serve every access. A block pointer or a tensor descriptor needs a dense box: every
index entry a tile, a slice, an int or a scalar (no gathers, no extra mask). A tensor descriptor
(TMA on Hopper+) further needs a 16-byte aligned base, a contiguous last dimension, 16-byte
multiple strides and 2-5 dimensions; `tilefn.lower.memory` checks the rest per Config.
"""
from __future__ import annotations

import torch

from ..trace.dynamic import is_symbolic_type, symbols_of
from ..trace.queries import next_power_of_2
from ..trace.sizes import SizeOp, SizeVar

INDEXING = ("pointer", "block_ptr", "tensor_descriptor")
ATOMIC_INDEXING = ("pointer", "tensor_descriptor")  # (Triton has no block-pointer atomics)
DESCRIPTOR_ATOMICS = ("atomic_add", "atomic_and", "atomic_or", "atomic_xor", "atomic_max", "atomic_min")


def access_forms(eqn) -> tuple:
    """The indexing forms some Config could give this load/store (pointer first)."""
    if not dense_access(eqn):
        return INDEXING[:1]
    return INDEXING if descriptor_possible(eqn) else INDEXING[:2]


def dense_access(eqn) -> bool:
    """Whether a load/store reads or writes a dense box: tiles, slices, ints and scalars only, no extra
    mask, at least one tile or slice, a non-bool tensor spanning less than 2**31 elements."""
    tensor, index = eqn.inputs[0], eqn.params["index"]
    return (not eqn.params["masked"] and tensor.type.dtype != torch.bool and not span_is_wide(tensor.type)
            and all(entry[0] in ("new", "tile", "slice", "int", "scalar") for entry in index)
            and any(entry[0] in ("tile", "slice") for entry in index))


def descriptor_possible(eqn) -> bool:
    """Whether some block sizes let TMA serve this access: `descriptor_ok`'s rules that hold whatever
    the block sizes (the tuner offers tensor descriptors only where this is True)."""
    if not (dense_access(eqn) and tma_tensor(eqn.inputs[0].type)):
        return False
    t = eqn.inputs[0].type
    item = t.dtype.itemsize
    entries = [entry for entry in eqn.params["index"] if entry[0] != "new"]
    for entry, size in zip(entries, t.shape):
        if entry[0] == "slice":
            lanes = next_power_of_2(entry[2] - entry[1])
            if lanes > 256 or (lanes != entry[2] - entry[1] and entry[2] != size):
                return False
    last = entries[-1]
    if last[0] in ("int", "scalar"):  # a box one element wide: under TMA's 16 bytes
        return False
    return last[0] != "slice" or (next_power_of_2(last[2] - last[1]) * item >= 16 and last[1] * item % 16 == 0)


def span_is_wide(tensor_type) -> bool:
    """Whether some element lies 2**31 or more elements past the base: int32 offsets overflow (a symbolic
    type: whether the signature it was traced for says so, `tilefn.trace.dynamic`)."""
    if is_symbolic_type(tensor_type):
        return any(s.wide for s in symbols_of(tensor_type))
    return sum((s - 1) * st for s, st in zip(tensor_type.shape, tensor_type.strides)) >= 2 ** 31


def tma_tensor(t) -> bool:
    """TMA's rules on the tensor itself: 16-byte aligned base, 2-5 dims, unit last stride, 16-byte strides."""
    item = t.dtype.itemsize
    return (t.aligned and 2 <= len(t.shape) <= 5 and t.strides[-1] == 1
            and all(_stride_divisible16(st, item) for st in t.strides[:-1]))


def _stride_divisible16(stride, item: int) -> bool:
    """A stride of a positive multiple of 16 bytes (a symbolic one: by the divisibility facts of its symbols)."""
    if isinstance(stride, SizeVar):
        return stride.divisible16
    if isinstance(stride, SizeOp):
        return stride.op == "*" and any(_stride_divisible16(x, item) for x in (stride.left, stride.right))
    return stride > 0 and stride * item % 16 == 0




def atomic_forms(eqn) -> tuple:
    """The indexing forms some Config could give this atomic: a descriptor reduction only for the ops
    TMA reduces, relaxed and unmasked, over a box TMA can take (`tilefn.lower.atomics` checks the rest)."""
    if (eqn.prim.name in DESCRIPTOR_ATOMICS and eqn.params["sem"] == "relaxed" and not eqn.params["masked"]
            and tuple(eqn.inputs[-1].type.shape) == tuple(eqn.params["shape"]) and descriptor_possible(eqn)):
        return ATOMIC_INDEXING
    return ATOMIC_INDEXING[:1]
