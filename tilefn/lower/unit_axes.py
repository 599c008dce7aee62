"""Values without their one-lane tile axes: a tile of block size 1 (a batch of one, its `begin` a program
id) indexes loads and stores as a scalar, so a batch-of-one product's operands, the product and its store
are lower-rank, as in a plain 2-d matmul.

`Emitter.unit_free[var] = (name, axes)`: `var`'s value with its axes `axes` (one-lane tile dims) dropped.
A load makes one where some reader takes it (`memory.takes_unit_free`: a batch-of-one tl.dot, a
store, or pointwise ops and permutes on the way to one); `var`'s own name then holds `tl.expand_dims` of it,
which Triton drops when nothing reads it. Pointwise ops (`ELEMENTWISE`) whose tensor operands all have one,
permutes and batch-of-one products make one from theirs; stores write it. A 3-d load reshaped to 2-d before
tl.dot instead reached the tensor cores through registers: four layout conversions and four serialised
wgmmas per k step (bmm 64x512^3 bf16 at 48% of cuBLAS on the H200).
"""
from __future__ import annotations

from ..trace.ir import Var
from ..trace.primitives import BINARY, UNARY, convert_p
from ..trace.types import TensorType
from .access_forms import dense_access
from .emit import Emitter

# pointwise primitives whose rules read their operands by name and dtype alone (no shapes): the same rule
# lowers the unit-free forms
ELEMENTWISE = frozenset({convert_p, *UNARY, *BINARY})


def droppable_axes(em: Emitter, eqn, shape) -> tuple[int, ...]:
    """The axes of a dense load's or store's `shape` that a scalar index can serve: one-lane tile dims with no
    mask and no bound of their own (`("tile", size)`), when some other axis remains."""
    if not dense_access(eqn):
        return ()
    axes, axis, rest = [], 0, list(eqn.inputs[1:])
    for entry in eqn.params["index"]:
        kind = entry[0]
        if kind == "tile":
            dim = rest.pop(0).type.dim
            if len(entry) == 1 and em.lanes(dim) == 1 and not em.tile_masked(dim) and shape[axis] == dim:
                axes.append(axis)
        elif kind == "scalar":
            rest.pop(0)
        axis += kind in ("new", "tile", "slice")
    return tuple(axes) if len(axes) < len(shape) else ()


def assign(em: Emitter, var, expr: str, axes: tuple[int, ...]) -> None:
    """Assign `expr`, `var`'s value without its axes `axes`, to a name of its own, and `var` its full value."""
    rank = var.type.rank - len(axes)
    name = em.fresh(f"{em(var)}_{rank}d")
    em.emit(f"{name} = {expr}")
    em.unit_free[var] = (name, axes)
    em.assign(var, expanded(name, axes))


def kept(shape, axes: tuple[int, ...]) -> list:
    """`shape` without `axes`."""
    return [d for i, d in enumerate(shape) if i not in axes]


def elementwise_axes(em: Emitter, eqn) -> tuple[int, ...]:
    """The axes an ELEMENTWISE equation's tensor operands all drop (each of the output's shape, with a unit-free
    form dropping the same axes; scalars aside); () when some operand has none."""
    if eqn.prim not in ELEMENTWISE:
        return ()
    shape, found = eqn.outputs[0].type.shape, set()
    for atom in tensor_operands(eqn):
        form = em.unit_free.get(atom)
        if form is None or atom.type.shape != shape:
            return ()
        found.add(form[1])
    return found.pop() if len(found) == 1 else ()


def tensor_operands(eqn) -> list:
    """The inputs of `eqn` that are tensors of at least one axis (numbers and 0-d values broadcast as they are)."""
    return [x for x in eqn.inputs if isinstance(x, Var) and isinstance(x.type, TensorType) and x.type.shape]


def lower_elementwise(em: Emitter, eqn, rule, axes: tuple[int, ...]) -> None:
    """`rule` lowering the equation on its operands' unit-free forms; its output's full value expanded from that."""
    out, full = eqn.outputs[0], em(eqn.outputs[0])
    operands = [a for a in eqn.inputs if isinstance(a, Var) and a in em.unit_free]
    saved = {a: em(a) for a in operands}
    em.names.update({a: em.unit_free[a][0] for a in operands})
    em.names[out] = em.fresh(f"{full}_{out.type.rank - len(axes)}d")
    try:
        rule(em, eqn)
    finally:
        name = em.names[out]
        em.names.update(saved)
        em.names[out] = full
    em.unit_free[out] = (name, axes)
    em.emit(f"{full} = {expanded(name, axes)}")


def assign_permuted(em: Emitter, out, form: tuple, perm: tuple[int, ...]) -> None:
    """`out`, the permutation `perm` of a value whose unit-free form is `form`, from that form."""
    name, dropped = form
    kept_in = [i for i in range(len(perm)) if i not in dropped]
    reduced = tuple(kept_in.index(i) for i in perm if i not in dropped)
    text = name if reduced == tuple(range(len(reduced))) else f"tl.permute({name}, {reduced})"
    assign(em, out, text, tuple(j for j, i in enumerate(perm) if i in dropped))


def expanded(name: str, axes: tuple[int, ...]) -> str:
    """The full value of a unit-free form: its one-lane axes put back."""
    for axis in sorted(axes):
        name = f"tl.expand_dims({name}, {axis})"
    return name
