"""Memory accesses transposed: a store's cotangent is a load of the output's cotangent at the same
index; a load's cotangent is written into the input's gradient buffer at the same index, by a plain store
where each element is read by one lane of one program (`exclusive`), else by an atomic add (a weight
row read by every row tile, a gather through an index tensor, a tile re-read on every inner iteration)."""
from __future__ import annotations

import attrs

from ..errors import UnsupportedOp
from ..trace import primitives as p

EXCLUSIVE_ENTRIES = ("slice", "int", "new")  # index entries that name the same elements in every program


@attrs.frozen
class Buffers:
    """The kernel's host tensors and theirs in the backward: `grads` (an input read by the forward -> its
    gradient buffer), `cotangents` (a tensor the forward writes -> its cotangent), `loads` (how many load
    equations read each tensor)."""

    grads: dict
    cotangents: dict
    loads: dict


def access_parts(eqn):
    """A load's or store's (index inputs, value or None, mask or None)."""
    rest = list(eqn.inputs[1:])
    mask = rest.pop() if eqn.params["masked"] else None
    value = rest.pop() if eqn.prim is not p.load_p else None
    return rest, value, mask


def _write_parts(eqn):
    """A store's or atomic's (index inputs, written value, mask or None)."""
    return access_parts(eqn) if eqn.prim is p.store_p else (list(eqn.inputs[1:-1]), eqn.inputs[-1], None)


def written_value(eqn):
    """The value a store or an atomic writes."""
    return _write_parts(eqn)[1]


def cotangent_load(b, eqn, buffers: Buffers):
    """The cotangent of what `eqn` (a store, or an atomic add) writes: the output's cotangent at that index."""
    ct_buf = buffers.cotangents[eqn.inputs[0]]
    index, value, mask = _write_parts(eqn)
    shape = tuple(eqn.params.get("shape", value.type.shape))  # (an atomic's index may broadcast to its value)
    ct = b.op(p.load_p, ct_buf, *index, *([mask] if mask is not None else []), shape=shape,
              dtype=ct_buf.type.dtype, index=eqn.params["index"], masked=mask is not None)
    return b.broadcast(ct, value.type.shape)


def exclusive(eqn, tiles, buffers: Buffers) -> bool:
    """Whether no two (program, lane, iteration)s of the kernel read one element through load `eqn`:
    its tensor has no other load, and its index walks every enclosing loop's tile (no gathers)."""
    if buffers.loads[eqn.inputs[0]] != 1:
        return False
    index, _, _ = access_parts(eqn)
    used = []
    for entry in eqn.params["index"]:
        if entry[0] == "tile":
            used.append(index[len(used)])
        elif entry[0] not in EXCLUSIVE_ENTRIES:
            return False
    return all(any(t is u for u in used) for t in tiles)


def transpose_load(b, eqn, ct, tiles, buffers: Buffers) -> None:
    """Write the cotangent `ct` of load `eqn` into its tensor's gradient buffer."""
    grad = buffers.grads.get(eqn.inputs[0])
    if grad is None:
        return
    index, _, mask = access_parts(eqn)
    value = b.convert(ct, grad.type.dtype)
    if exclusive(eqn, tiles, buffers):
        b.emit(p.store_p, grad, *index, value, *([mask] if mask is not None else []), index=eqn.params["index"],
               masked=mask is not None)
        return
    if mask is not None:
        raise UnsupportedOp("tfn.vjp: this masked load (an extra mask, or a jagged tile) is read by several "
                            "programs, so its gradient needs an atomic add, which takes no mask yet; load it "
                            "once per element", source=eqn.source)
    b.emit(p.P["atomic_add"], grad, *index, value, shape=tuple(eqn.params["shape"]), index=eqn.params["index"],
           masked=False, sem="relaxed", scope="gpu")
