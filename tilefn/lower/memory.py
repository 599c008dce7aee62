"""Loads and stores: each access addressed by pointers, a block pointer or a tensor descriptor.

`Config.indexing` picks per access site (`tilefn.lower.sites`: loads and stores in program
order, or one string for all). Beyond the access's own rules (`tilefn.lower.access_forms`), a
tensor descriptor needs boxes of at most 256 lanes per dimension and 16+ bytes per row, and box
edges only at the tensor's own bounds. An access that cannot take the asked-for form uses
pointers: the choice changes speed, never results. Where Triton has no block pointers (3.9 removed
them), "block_ptr" takes a tensor descriptor where the access allows one, else pointers (one notice).
"""
from __future__ import annotations

import attrs

from ..trace.ir import Var
from . import backend
from ..trace.primitives import dot_p, load_p, permute_p, store_p
from . import unit_axes
from .access_forms import dense_access, span_is_wide, tma_tensor
from .dots import batch_of_one, takes_tl_dot
from .float8 import FLOAT8
from .emit import Emitter
from ..trace.queries import next_power_of_2
from ..trace.sizes import hint


@attrs.frozen
class BoxDim:
    """One tensor dimension of a dense box access."""

    offset: str  # first index, as source text
    lanes: str  # box extent as source text (a constexpr name or a number)
    size: int  # box extent as an int
    bound: str | None  # where the valid lanes end when the box may overhang it; None: never overhangs
    start: int | None  # a static int the first index is (tiles: begin) plus a multiple of `size`; None: unknown


def _int32(text: str) -> str:
    """An index as int32 (block pointers and descriptors take no other): a runtime value may be int64
    in Triton even where the IR says int32 (a loop over a loaded bound)."""
    return text if _literal_int(text) is not None else f"tl.cast({text}, tl.int32)"


def _literal_int(text: str) -> int | None:
    return int(text) if text.lstrip("-").isdigit() else None


def box(em: Emitter, eqn) -> list[BoxDim] | None:
    """The box a load/store reads or writes, one entry per tensor dimension; None unless it is dense."""
    if not dense_access(eqn):
        return None
    rest = list(eqn.inputs[1:])
    dims = []
    for entry in eqn.params["index"]:
        kind = entry[0]
        if kind == "new":
            continue
        if kind == "tile":
            dim = rest.pop(0).type.dim
            begin, end = em.tile_begins[dim.tile], em.tile_ends[dim.tile]
            bound = end if em.dim_mask(dim) is not None else None
            if len(entry) > 1:  # the tile runs past the tensor (its static end is larger): its size bounds it
                bound = str(entry[1])
            offset = f"off_{em.tiles[dim.tile]}"
            if _literal_int(begin) is None or _literal_int(end) is None:  # (static bounds: off_ is int32)
                offset = _int32(offset)
            dims.append(BoxDim(offset, em.dim_expr(dim), em.lanes(dim), bound, _literal_int(begin)))
        elif kind == "slice":
            start, stop = entry[1], entry[2]
            lanes = next_power_of_2(stop - start)
            dims.append(BoxDim(str(start), str(lanes), lanes, str(stop) if lanes != stop - start else None, start))
        elif kind == "int":
            dims.append(BoxDim(str(entry[1]), "1", 1, None, entry[1]))
        else:  # a scalar index
            dims.append(BoxDim(_int32(em(rest.pop(0))), "1", 1, None, None))
    return dims


def descriptor_ok(tensor, dims: list[BoxDim]) -> bool:
    """Whether TMA can serve this box of `tensor` (see the module docstring)."""
    t = tensor.type
    item = t.dtype.itemsize
    if not tma_tensor(t) or any(d.size > 256 for d in dims):
        return False
    last_start = dims[-1].start
    if dims[-1].size * item < 16 or last_start is None or last_start * item % 16:
        return False
    return all(d.bound is None or d.bound == str(size) for d, size in zip(dims, t.shape))


def descriptor(em: Emitter, tensor, dims: list[BoxDim]) -> str:
    """The name of the kernel-wide descriptor of `tensor` with this box shape (made in the prologue once)."""
    key = (em(tensor), tuple(d.lanes for d in dims))
    if key not in em.descriptors:
        name = em.fresh(f"{em(tensor)}_desc")
        shape = ", ".join(map(str, tensor.type.shape))
        strides = ", ".join(map(str, tensor.type.strides))
        em.prologue.append(f"{name} = tl.make_tensor_descriptor({em(tensor)}, shape=[{shape}], strides=[{strides}], "
                           f"block_shape=[{', '.join(key[1])}])")
        em.descriptors[key] = name
    return em.descriptors[key]


def _block_ptr(em: Emitter, tensor, dims: list[BoxDim], scalar: tuple[int, ...] = ()) -> tuple[str, str, list[str]]:
    """A block pointer to the box (assigned to a fresh name), its boundary_check argument text and its block
    shape; the box dims `scalar` (one-lane tiles, `unit_axes`) move its base instead of being dims of it."""
    t = tensor.type
    base = " + ".join([em(tensor)] + [f"{dims[i].offset} * {t.strides[i]}" for i in scalar])
    kept = [i for i in range(len(dims)) if i not in scalar]
    shape = [dims[i].bound or str(t.shape[i]) for i in kept]
    order = sorted(range(len(kept)), key=lambda j: hint(t.strides[kept[j]]))  # (a layout hint: the traced strides')
    name, lanes = em.fresh(f"{em(tensor)}_block"), [dims[i].lanes for i in kept]
    em.emit(f"{name} = tl.make_block_ptr({base}, shape=[{', '.join(shape)}], "
            f"strides=[{', '.join(str(t.strides[i]) for i in kept)}], offsets=[{', '.join(dims[i].offset for i in kept)}], "
            f"block_shape=[{', '.join(lanes)}], order={order})")
    checked = [j for j, i in enumerate(kept) if dims[i].bound is not None]
    return name, (f", boundary_check={tuple(checked)}" if checked else ""), lanes


def _box_dims_of(eqn, axes: tuple[int, ...]) -> tuple[int, ...]:
    """The box dims (`box`) that index the access's axes `axes`."""
    found, axis, box_dim = [], 0, 0
    for entry in eqn.params["index"]:
        if entry[0] in ("new", "tile", "slice"):
            if axis in axes and entry[0] != "new":
                found.append(box_dim)
            axis += 1
        box_dim += entry[0] != "new"
    return tuple(found)


def _box_form(em: Emitter, eqn) -> tuple[str, list[BoxDim] | None]:
    """The indexing form this access gets: the Config's choice when the access allows it, else pointer."""
    choice = em.knob("indexing", eqn) or "pointer"
    dims = box(em, eqn) if choice != "pointer" else None
    if dims is None:
        return "pointer", None
    if choice == "block_ptr" and not backend.compat().has_block_ptr():
        backend.compat().block_ptr_fallback_notice()
        choice = "tensor_descriptor"
    if choice == "tensor_descriptor" and not descriptor_ok(eqn.inputs[0], dims):
        return "pointer", None
    return choice, dims


def reshaped(expr: str, have: list[str], want: list[str]) -> str:
    """`expr` reshaped from lanes `have` to `want` (the box's int/scalar dims dropped, new axes added)."""
    return expr if have == want else f"tl.reshape({expr}, [{', '.join(want)}])"


def takes_unit_free(em: Emitter, var) -> bool:
    """Whether some equation reads `var` in its unit-free form (`unit_axes`): a batch-of-one tl.dot, a store, or a
    pointwise op or permute whose result some equation so reads."""
    for eqn in em.readers.get(var, ()):
        if eqn.prim is dot_p and batch_of_one(em, eqn) and takes_tl_dot(em, eqn):
            return True
        if eqn.prim is store_p and eqn.inputs[-1] is var and not eqn.params["masked"]:
            return True
        passes_on = eqn.prim is permute_p or (eqn.prim in unit_axes.ELEMENTWISE and eqn.outputs[0].type.shape == var.type.shape
                                               and all(_has_form(em, x) for x in unit_axes.tensor_operands(eqn) if x is not var))
        if passes_on and takes_unit_free(em, eqn.outputs[0]):
            return True
    return False


def _has_form(em: Emitter, var) -> bool:
    """Whether `var` can have a unit-free form (`unit_axes`): a dense load with one-lane axes to drop, a pointwise
    op on such values alone, a permute of one, a batch-of-one product. A pointwise op that also reads a value
    without one (a row statistic broadcast back, say) keeps its full rank, so the chain to a store stops there:
    1-d loads mixed into 2-d math left Triton 3.6 converting layouts through shared memory (Helion's rms_norm,
    2048x4096 fp16 with one row a program: 1030 shared stores and 70 barriers a program, 0.145 ms against 0.014)."""
    eqn = em.producers.get(var)
    if eqn is None:
        return False
    if eqn.prim is load_p:
        return bool(unit_axes.droppable_axes(em, eqn, var.type.shape))
    if eqn.prim is permute_p:
        return _has_form(em, eqn.inputs[0])
    if eqn.prim is dot_p:
        return batch_of_one(em, eqn) and takes_tl_dot(em, eqn)
    return (eqn.prim in unit_axes.ELEMENTWISE
            and all(x.type.shape == var.type.shape and _has_form(em, x) for x in unit_axes.tensor_operands(eqn)))


def lower_load(em: Emitter, eqn) -> None:
    """A load through the indexing form the Config picks (descriptor loads take no eviction policy); without its
    one-lane tile axes where a reader takes that (`unit_axes`)."""
    out = eqn.outputs[0]
    dropped = unit_axes.droppable_axes(em, eqn, out.type.shape) if takes_unit_free(em, out) else ()
    shape = unit_axes.kept(out.type.shape, dropped)
    policy = em.knob("load_eviction_policies", eqn)
    policy = f", eviction_policy={policy!r}" if policy else ""
    form, dims = _box_form(em, eqn)
    tensor = eqn.inputs[0]
    if form == "pointer":
        pointer, mask = address(em, eqn, shape, dropped)
        other = "0.0" if tensor.type.dtype in FLOAT8 else "0"  # (Triton's CPU interpreter casts no int to float8)
        expr = f"tl.load({pointer}" + (f", mask={mask}, other={other}" if mask else "") + policy + ")"
        padded = bool(mask)
    else:
        lanes = [d.lanes for d in dims]
        if form == "tensor_descriptor":
            expr = f"{descriptor(em, tensor, dims)}.load([{', '.join(d.offset for d in dims)}])"
        else:
            pointer, checks, lanes = _block_ptr(em, tensor, dims, _box_dims_of(eqn, dropped))
            expr = f"tl.load({pointer}{checks}" + (', padding_option="zero"' if checks else "") + policy + ")"
        expr = reshaped(expr, lanes, [em.dim_expr(d) for d in shape])
        padded = any(d.bound is not None for d in dims)
    if dropped:
        unit_axes.assign(em, out, expr, dropped)
    else:
        em.assign(out, expr)
    if padded:
        em.zero_padded.add(out)


def lower_store(em: Emitter, eqn) -> None:
    """A store through the indexing form the Config picks; of the value's unit-free form where it has one the
    access can take (`unit_axes`)."""
    value_var = eqn.inputs[-2] if eqn.params["masked"] else eqn.inputs[-1]
    shape = value_var.type.shape if isinstance(value_var, Var) else ()
    form, dims = _box_form(em, eqn)
    if not isinstance(value_var, Var):
        form = "pointer"
    value, dropped = em(value_var), ()
    unit_free = em.unit_free.get(value_var)
    if unit_free is not None and unit_axes.droppable_axes(em, eqn, shape) == unit_free[1]:
        value, dropped = unit_free
        shape = unit_axes.kept(shape, dropped)
    if form == "pointer":
        pointer, mask = address(em, eqn, shape, dropped)
        em.emit(f"tl.store({pointer}, {value}" + (f", mask={mask}" if mask else "") + ")")
        return
    tensor, have = eqn.inputs[0], [em.dim_expr(d) for d in shape]
    if form == "tensor_descriptor":
        value = reshaped(value, have, [d.lanes for d in dims])
        em.emit(f"{descriptor(em, tensor, dims)}.store([{', '.join(d.offset for d in dims)}], {value})")
    else:
        pointer, checks, lanes = _block_ptr(em, tensor, dims, _box_dims_of(eqn, dropped))
        em.emit(f"tl.store({pointer}, {reshaped(value, have, lanes)}{checks})")


def address(em: Emitter, eqn, shape, dropped: tuple[int, ...] = ()):
    """Pointer expression and mask (with the access's extra mask, if any) for a load/store of `shape`; the access's
    axes `dropped` (one-lane tiles, `unit_axes`) indexed by their tile's scalar offset, absent from `shape`."""
    tensor, rest = eqn.inputs[0], list(eqn.inputs[1:])
    strides, wide = tensor.type.strides, span_is_wide(tensor.type)
    rank, axis, dim_axis, terms, broadcast, bounds = len(shape), 0, 0, [], False, []
    full_axis = 0  # (the access's axis, counting `dropped`; `axis` counts the value's)
    for entry in eqn.params["index"]:
        kind = entry[0]
        if kind == "new":
            axis, full_axis = axis + 1, full_axis + 1
            continue
        stride = strides[dim_axis]
        if kind == "tile" and full_axis in dropped:
            offset = f"off_{em.tile_name(rest.pop(0))}"
            full_axis += 1
        elif kind == "tile":
            offset = em.expand(f"offs_{em.tile_name(rest.pop(0))}", axis, rank)
            if len(entry) > 1:  # a tile running past the tensor: lanes past its size are off
                bounds.append(f"({offset} < {entry[1]})")
            axis, full_axis = axis + 1, full_axis + 1
        elif kind == "slice":
            start, stop = entry[1], entry[2]
            lanes = em.lanes(stop - start)
            offset = em.expand(f"({start} + tl.arange(0, {lanes}))" if start else f"tl.arange(0, {lanes})", axis, rank)
            axis, full_axis = axis + 1, full_axis + 1
        elif kind == "int":
            offset = str(entry[1]) if entry[1] else None
        elif kind == "scalar":
            offset = em(rest.pop(0))
        else:
            index = rest.pop(0)
            g = index.type.rank
            if len(entry) > 1:  # ("gather", "same"): over the result axes of the gather before it
                axis -= g
            sub = ", ".join(["None"] * axis + [":"] * g + ["None"] * (rank - axis - g))
            offset = f"{em(index)}[{sub}]" if rank > g else em(index)
            axis += g
        dim_axis += 1
        if stride == 0 and kind in ("tile", "slice", "gather"):
            broadcast = True  # (an expanded tensor) the pointer must still span this axis
        if offset is None or stride == 0:
            continue
        if wide:
            offset = f"({offset}).to(tl.int64)"
        terms.append(offset if stride == 1 else f"{offset} * {stride}")
    if broadcast:
        terms.append(f"tl.zeros({em.shape_expr(shape)}, dtype=tl.int32)")
    pointer = " + ".join([em(tensor)] + terms)
    mask = " & ".join(([em.value_mask(shape)] if em.value_mask(shape) else []) + bounds) or None
    if eqn.params["masked"]:  # the extra mask is the last input (after a store's value)
        extra = em(eqn.inputs[-1])
        mask = f"({mask}) & {extra}" if mask else extra
    return pointer, mask
