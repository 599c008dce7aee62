"""Host calls on symbolic sizes (static_shapes=False): the symbolic types of what they return.

A host call (`torch.empty([m, n])`, `x.view(-1)`, `losses.mean()`) runs on meta tensors, which need
numbers. It is run three times: on the traced sizes and on two other assignments of every symbol it
reads (each symbol moved by its own amount, so no two coincide). An output dimension that is the same
number in all three runs is that number; one that follows a symbol (or the product of a run of one
tensor's sizes: a flatten, a `view(-1)`) in all three is that expression; its strides are the
row-major ones of the symbolic shape when every run's output is contiguous, else each explained as a
size is. Anything else (an output shape no such expression explains, a call that fails on other sizes)
specialises: every symbol the call reads is guarded to its traced value, as host code that needs the
number does. So `torch.empty_like(x)`, views, reshapes, reductions and elementwise host code stay
symbolic, and nothing is ever guessed silently: a shape the runs cannot explain is made static.
"""
from __future__ import annotations

import torch

from .dynamic import symbols_of
from .pytree import tree_leaves, tree_map
from .sizes import SizeExpr, binary, guard, structure, value
from .types import HostType, contiguous_strides


def _symbols(args, kwargs, type_of) -> list:
    found = {}
    for leaf in tree_leaves((args, kwargs)):
        t = type_of(leaf)
        for s in symbols_of(t if t is not None else leaf):
            found.setdefault(s.name, s)
    return list(found.values())


def _assignments(symbols) -> list[dict]:
    """The traced sizes and two others, each symbol moved by its own amount (multiples of 16: the same
    divisibility)."""
    hints = {s.name: s.hint for s in symbols}
    moved = [{s.name: s.hint + 16 * (k + 1) * step for k, s in enumerate(symbols)} for step in (1, 3)]
    return [hints, *moved]


def _meta_call(func, args, kwargs, sizes, type_of, to_meta):
    def leaf(x):
        t = type_of(x)
        if t is not None and sizes is not None:
            with torch._C.DisableTorchFunction():
                return torch.empty_strided([value(d, sizes) for d in t.shape], [value(d, sizes) for d in t.strides],
                                           dtype=t.dtype, device="meta")
        if isinstance(x, SizeExpr):
            return value(x, sizes) if sizes is not None else x.hint
        return to_meta(x)

    meta_kwargs = tree_map(leaf, kwargs)
    if "device" in meta_kwargs:
        meta_kwargs["device"] = "meta"
    with torch._C.DisableTorchFunction():
        return func(*tree_map(leaf, args), **meta_kwargs)


def _candidates(symbols, args, type_of) -> list:
    """The expressions an output size may be: each symbol, each size the call is given, and the products
    of runs of one tensor's sizes."""
    out = list(symbols)
    for leaf in tree_leaves(args):
        t = type_of(leaf)
        if t is None:
            out.append(leaf)
            continue
        for i in range(len(t.shape)):
            product = t.shape[i]
            for j in range(i + 1, len(t.shape)):
                product = binary("*", product, t.shape[j])
                out.append(product)
    return [c for c in out if isinstance(c, SizeExpr)]


def _explain(values: tuple, candidates, runs) -> object:
    """The int or expression taking `values` under each run's sizes, or None."""
    if len(set(values)) == 1:
        return values[0]
    for c in candidates:
        if tuple(value(c, sizes) for sizes in runs) == values:
            return c
    return None


def symbolic_outputs(func, args, kwargs, type_of, to_meta, device, base_aligned: bool):
    """(meta result on the traced sizes, the symbolic HostType of each tensor output) of a host call that
    reads symbolic sizes, or None when they cannot be explained (the caller then specialises)."""
    symbols = _symbols(args, kwargs, type_of)
    runs = _assignments(symbols)
    try:
        results = [_meta_call(func, args, kwargs, sizes if k else None, type_of, to_meta)
                   for k, sizes in enumerate(runs)]
    except Exception:
        return None
    items = [list(res) if isinstance(res, (tuple, list)) else [res] for res in results]
    flat = [[r for r in res if isinstance(r, torch.Tensor)] for res in items]
    others = [[r for r in res if not isinstance(r, torch.Tensor)] for res in items]
    if len({len(f) for f in flat}) != 1 or any(o != others[0] for o in others):
        return None  # (a number that follows the sizes, `x.nelement()`: specialised)
    candidates, types = _candidates(symbols, args, type_of), []
    for outs in zip(*flat):
        if len({o.ndim for o in outs}) != 1:
            return None
        shape = [_explain(tuple(o.shape[d] for o in outs), candidates, runs) for d in range(outs[0].ndim)]
        if any(d is None for d in shape):
            return None
        if all(o.is_contiguous() for o in outs):
            strides = contiguous_strides(shape)
        else:  # (a layout kept from an input: `empty_like` of a transposed tensor)
            strides = [_explain(tuple(o.stride(d) for o in outs), candidates, runs) for d in range(outs[0].ndim)]
            if any(st is None for st in strides):
                return None
        aligned = base_aligned and all(o.storage_offset() * o.element_size() % 16 == 0 for o in outs)
        types.append(HostType(tuple(shape), tuple(strides), outs[0].dtype, str(device), aligned))
    return results[0], types


def specialise_all(args, kwargs, type_of) -> None:
    """Guard every symbol a host call reads to its traced value."""
    for s in _symbols(args, kwargs, type_of):
        guard(s, "==", s.hint)


__all__ = ["symbolic_outputs", "specialise_all", "structure"]
