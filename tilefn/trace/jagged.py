"""`tl.jagged_tile(parent)` (Helion's `hl.jagged_tile`): a tile loop over a ragged inner dimension.

`parent` is an integer device value whose every dim is an enclosing tile: each lane's own end. The
loop runs over [0, parent.amax()) and every lane past its own end is masked off: a load or store
whose shape has the jagged dim takes the mask `tile.index < parent` (broadcast onto its dims; loads
read 0, stores drop those lanes), and a reduction over the jagged dim first puts its identity there.
So a jagged tile is an ordinary tile plus masks built from existing primitives, and the interpreter
and the lowering need nothing of their own. An access or reduction that has the jagged dim but not
its parent's dims is refused (there is no end to mask against), as Helion refuses it.
"""
from __future__ import annotations

from ..errors import ShapeError, TracingError
from . import state as st
from .loops import TileLoop, loop_dims_from
from .ops.pointwise import where
from .primitives import reduction_identity
from .proxies import DeviceValue
from .types import TileDim


class JaggedTileLoop(TileLoop):
    """A tile loop over [0, parent.amax()) whose tile is masked, lane by parent lane, at `parent`."""

    def __init__(self, parent: DeviceValue):
        dims, multi = loop_dims_from(parent.amax())
        super().__init__(dims, multi)
        self.ends = parent  # (not `parent`: a TileLoop's parent is its enclosing region)

    def _open(self, frame):
        tile = super()._open(frame)
        st.require().jagged[tile.dim.tile] = self.ends
        return tile

    def _close(self, frame):
        st.require().jagged.pop(self.handles[0].dim.tile, None)
        super()._close(frame)


def jagged_tile(parent) -> JaggedTileLoop:
    dims = getattr(parent, "shape", ())
    if not isinstance(parent, DeviceValue) or not dims or not all(
            isinstance(d, TileDim) and d.tile is not None for d in dims):
        raise ShapeError("tl.jagged_tile(parent) takes a device value whose every dim is an enclosing tile "
                         "(each lane's end, e.g. lengths = offsets[t.index + 1] - offsets[t]); it cannot be the "
                         "outermost loop")
    if parent.dtype.is_floating_point or parent.dtype.is_complex:
        raise ShapeError(f"tl.jagged_tile(parent) takes integer ends, got {parent.dtype}")
    return JaggedTileLoop(parent)


def lane_mask(shape) -> DeviceValue | None:
    """The valid lanes of the jagged dims of `shape` (broadcastable to it), or None when it has none."""
    state = st.require()
    mask = None
    for axis, dim in enumerate(shape):
        if isinstance(dim, TileDim) and dim.tile in state.jagged:
            lanes = _lanes(state, dim, state.jagged[dim.tile], shape, axis)
            mask = lanes if mask is None else mask & lanes
    return mask


def _lanes(state, dim, parent, shape, axis):
    missing = [d for d in parent.shape if d not in shape]
    if missing:
        raise ShapeError("a jagged tile is used without its parent's tiles (an access or reduction over "
                         "[..., jagged] needs the parent's dims too, e.g. x[tile_b, tile_k]), so no lane "
                         "knows its end")
    positions = [list(shape).index(d) for d in parent.shape]
    order = sorted(range(len(positions)), key=positions.__getitem__)
    if order != list(range(len(order))):
        parent = parent.permute(*order)
    ends = parent[tuple(slice(None) if a in positions else None for a in range(len(shape)))]
    index = state.tiles[dim.tile].index[tuple(slice(None) if a == axis else None for a in range(len(shape)))]
    return index < ends


def masked_for_reduction(prim, x: DeviceValue, axis: int) -> DeviceValue:
    """`x` with the reduction's identity on the lanes past their ends, when `axis` is a jagged dim."""
    dim = x.shape[axis]
    state = st.require()
    if not (isinstance(dim, TileDim) and dim.tile in state.jagged):
        return x
    return where(lane_mask(x.shape), x, reduction_identity(prim, x.dtype))


def refuse_mean(x: DeviceValue, axes) -> None:
    """A mean over a jagged dim would divide by the loop's lanes, not each lane's own count."""
    state = st.require()
    if any(isinstance(x.shape[a], TileDim) and x.shape[a].tile in state.jagged for a in axes):
        raise TracingError("mean / var over a jagged tile's dim: lanes have different counts; sum it and "
                           "divide by the lengths (the jagged tile's parent) instead")
