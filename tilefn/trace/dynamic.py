"""Dynamic shapes in the trace: tensor arguments with symbolic sizes and strides, host allocations of
symbolic shapes, and what a dynamic signature keys on.

A tensor argument of a dynamic trace gets one `SizeVar` per size (`s0`, `s1`, ...) and strides by its
*layout class*: "contiguous" (torch's is_contiguous: the strides are the products of the later sizes,
no stride arguments), "unit" (last stride 1, the others runtime `st` symbols: vectorised rows) or
"strided" (every stride a runtime symbol). What the dynamic key holds per tensor (`dynamic_tensor_key`):
dtype, rank, device, 16-byte alignment of its address, its layout class, the 16-divisibility of every
runtime stride and of every size but the leading one (the sizes a row-major layout multiplies into
strides: Triton's vectorisation needs them), and whether its offsets fit in int32. Never the sizes.
"""
from __future__ import annotations

import attrs
import torch

from . import state as st
from .arguments import tensor_leaves
from .ir import Lit, walk_eqns
from .primitives import loop_p
from .sizes import SizeExpr, SizeVar, bucket, is_symbolic, structure, value
from .types import HostType, contiguous_strides, is_aligned

INT32_SPAN = 2 ** 31 - 2 ** 20  # offsets below this stay int32 (a margin for a block past the end)


def layout_class(tensor: torch.Tensor) -> str:
    if tensor.is_contiguous():
        return "contiguous"
    if tensor.ndim and tensor.stride(-1) == 1:
        return "unit"
    return "strided"


def fits_int32(tensor: torch.Tensor) -> bool:
    span = sum((s - 1) * abs(st) for s, st in zip(tensor.shape, tensor.stride()) if s > 0)
    return span + 1 < INT32_SPAN and tensor.numel() < INT32_SPAN


def _divisible(shape, strides, layout) -> tuple:
    sizes = tuple(s % 16 == 0 for s in shape[1:])
    runtime = strides[:-1] if layout == "unit" else (strides if layout == "strided" else ())
    return sizes, tuple(s % 16 == 0 for s in runtime)


def dynamic_tensor_key(tensor: torch.Tensor) -> tuple:
    """What a dynamic Program is specialised on for one tensor argument (see the module docstring)."""
    layout = layout_class(tensor)
    return (tensor.dtype, tensor.ndim, tensor.device, is_aligned(tensor), layout,
            _divisible(tensor.shape, tensor.stride(), layout), fits_int32(tensor),
            expanded_axes(tensor) if layout != "contiguous" else ())


def expanded_axes(tensor: torch.Tensor) -> tuple:
    """The axes of stride 0 and size > 1 (an expanded tensor): their strides stay a literal 0."""
    return tuple(d for d, (s, st) in enumerate(zip(tensor.shape, tensor.stride())) if st == 0 and s > 1)


def runtime_stride_dims(tensor: torch.Tensor) -> tuple:
    """The axes whose strides a dynamic trace makes symbols (`st{n}`): none of a contiguous tensor's; of
    another, each axis but a unit last one and the expanded ones."""
    layout = layout_class(tensor)
    if layout == "contiguous":
        return ()
    expanded = expanded_axes(tensor)
    return tuple(d for d in range(tensor.ndim) if (layout == "strided" or d < tensor.ndim - 1) and d not in expanded)


def symbolic_host_type(tensor: torch.Tensor, position: int) -> HostType:
    """The HostType of the dynamic trace's argument `tensor`, program input number `position`."""
    state = st.require()
    layout, wide = layout_class(tensor), not fits_int32(tensor)
    shape = []
    for d, size in enumerate(tensor.shape):
        shape.append(SizeVar(f"s{state.size_count}", position, "size", d, size, d > 0 and size % 16 == 0, wide))
        state.size_count += 1
    if layout == "contiguous":
        strides = contiguous_strides(shape)
    else:
        strides, runtime = [], runtime_stride_dims(tensor)
        for d, stride in enumerate(tensor.stride()):
            if d not in runtime:
                strides.append(stride)  # 1, or 0: an expanded axis (keyed: `expanded_axes`)
                continue
            strides.append(SizeVar(f"st{state.stride_count}", position, "stride", d, stride, stride % 16 == 0, wide))
            state.stride_count += 1
    return HostType(tuple(shape), tuple(strides), tensor.dtype, str(tensor.device), is_aligned(tensor))


def call_sizes(flat) -> dict:
    """The value of every SizeVar a dynamic trace of the flat arguments `flat` names (`s0`: 7, `st0`: 64):
    the same names, in the same order, as `symbolic_host_type` gives while tracing."""
    sizes, n_sizes, n_strides = {}, 0, 0
    for value in flat:
        for _, _, tensor in tensor_leaves(value, "x"):
            for size in tensor.shape:
                sizes[f"s{n_sizes}"] = size
                n_sizes += 1
            for d in runtime_stride_dims(tensor):
                sizes[f"st{n_strides}"] = tensor.stride(d)
                n_strides += 1
    return sizes


def bound_sizes(inputs, tensors) -> dict:
    """SizeVar name -> value for a call: each symbolic input type's sizes and strides read off its tensor."""
    sizes = {}
    for var, tensor in zip(inputs, tensors):
        for sym in symbols_of(var.type):
            sizes[sym.name] = tensor.size(sym.dim) if sym.kind == "size" else tensor.stride(sym.dim)
    return sizes


def with_extents(program, sizes: dict):
    """`program` with each block's extent (what the default config and the tuner's domains read) the bucket
    of this call's extent of the loops it sizes: a dynamic Program is traced once, its configs are per bucket."""
    extents = {}
    kernel = program.kernel
    for eqn in walk_eqns(kernel.params["region"].eqns) if kernel is not None else ():
        if eqn.prim is not loop_p:
            continue
        for i, (kind, dim) in enumerate(eqn.params["dims"]):
            begin, end = (a.value for a in eqn.inputs[2 * i:2 * i + 2]) if all(
                isinstance(a, Lit) for a in eqn.inputs[2 * i:2 * i + 2]) else (0, 0)
            if kind == "tile" and (is_symbolic(begin) or is_symbolic(end)):
                extent = bucket(max(value(end, sizes) - value(begin, sizes), 0))
                extents[dim.block] = max(extents.get(dim.block, 0), extent)
    if not extents:
        return program
    blocks = [attrs.evolve(b, extent=extents[b.id]) if b.id in extents else b for b in program.blocks]
    return attrs.evolve(program, blocks=blocks)


def size_buckets(flat) -> tuple:
    """Every tensor argument's sizes rounded up to powers of two: what a tuned config of a dynamic kernel
    serves (`tilefn.tune`)."""
    return tuple(tuple(bucket(s) for s in tensor.shape) for value in flat for _, _, tensor in tensor_leaves(value, "x"))


def is_symbolic_type(t) -> bool:
    return isinstance(t, HostType) and any(is_symbolic(d) for d in (*t.shape, *t.strides))


def symbols_of(x) -> list:
    """The SizeVars an int, SizeExpr or HostType mentions, each once, in order."""
    if isinstance(x, HostType):
        found = [s for d in (*x.shape, *x.strides) for s in symbols_of(d)]
    elif isinstance(x, SizeVar):
        found = [x]
    elif isinstance(x, SizeExpr):
        found = symbols_of(x.left) + symbols_of(x.right)
    else:
        return []
    out = []
    for s in found:
        if all(s.name != o.name for o in out):
            out.append(s)
    return out


def layout_of_type(t: HostType) -> str:
    if tuple(map(structure, t.strides)) == tuple(map(structure, contiguous_strides(t.shape))):
        return "contiguous"
    return "unit" if t.strides and not is_symbolic(t.strides[-1]) and t.strides[-1] == 1 else "strided"
