"""Values over a block's full lanes, made before a loop their block sizes (Helion's
`acc = hl.zeros([tile_m, block_n])` before `for tile_n in hl.tile(n, block_size=block_n)`).

Such a value has the dimension `lanes_dim(block)`: the block's lanes, all valid. When a loop over a
tile of that block opens, every such value the caller's frame names is seen on the tile's lanes
(`lanes_view`, the proxy itself is retargeted to the view, so the body computes with tile-shaped
values); the loop closes with the proxy restored. A name rebound in the body is a carry over the
full lanes: its new value is written back over the tile's valid lanes (`lanes_merge`), so lanes past
a ragged edge tile keep what earlier tiles left (lane j of `acc += x[tm, tn]` sums x[:, k*B + j]).
"""
from __future__ import annotations

import attrs

from .ir import Eqn, Var
from .primitives import lanes_merge_p, lanes_view_p
from .proxies import DeviceValue, bind
from .types import lanes_dim


@attrs.frozen
class Viewed:
    """A proxy seen on a loop's tiles: what it stood for before, and the tile dims it was viewed with."""

    proxy: DeviceValue
    var: Var
    region: object
    dims: tuple


def view_values(names: dict, region, tile_dims) -> dict:
    """View each in-scope value of `names` over the full lanes of a block of `tile_dims` on the tiles'
    lanes (equations emitted into `region`, the new loop body); returns id(proxy) -> Viewed."""
    viewed = {}
    for value in names.values():
        if not isinstance(value, DeviceValue) or id(value) in viewed or value.region.closed:
            continue
        if not value.region.encloses(region):
            continue
        dims = tuple(d for d in tile_dims if lanes_dim(d.block) in value.shape)
        if dims:
            viewed[id(value)] = Viewed(value, value.ir_var, value.region, dims)
            (value.ir_var,) = bind(lanes_view_p, (value.ir_var,), dims=dims)
            value.region = region
    return viewed


def restore(viewed: dict) -> None:
    for v in viewed.values():
        v.proxy.ir_var, v.proxy.region = v.var, v.region


def merge_eqn(viewed: Viewed, body_value: Var, site: str, source) -> Eqn:
    """The equation writing a carry's body value back over its full lanes (`viewed.var`, mapped to the
    loop parameter with the rest of the body)."""
    out = Var(viewed.var.type)
    return Eqn(lanes_merge_p, (body_value, viewed.var), (out,), {"dims": viewed.dims}, source, site)
