"""Config: the knobs that pick one compiled variant of a kernel."""
from __future__ import annotations

import attrs

_tuple = lambda v: tuple(v) if v is not None else ()  # noqa: E731


@attrs.frozen
class Config:
    """Block sizes per block symbol and the code-generation knobs; prints as pasteable Python."""

    block_sizes: tuple = attrs.field(default=(), converter=_tuple)
    loop_orders: tuple = attrs.field(default=(), converter=_tuple)
    flatten_loops: tuple = attrs.field(default=(), converter=_tuple)
    l2_groupings: tuple = attrs.field(default=(), converter=_tuple)
    reduction_loops: tuple = attrs.field(default=(), converter=_tuple)
    range_unroll_factors: tuple = attrs.field(default=(), converter=_tuple)
    range_num_stages: tuple = attrs.field(default=(), converter=_tuple)
    range_multi_buffers: tuple = attrs.field(default=(), converter=_tuple)
    range_flattens: tuple = attrs.field(default=(), converter=_tuple)
    range_warp_specializes: tuple = attrs.field(default=(), converter=_tuple)
    static_ranges: tuple = attrs.field(default=(), converter=_tuple)
    num_warps: int | None = None
    num_stages: int | None = None
    indexing: str | tuple = "pointer"
    pid_type: str = "flat"
    load_eviction_policies: tuple = attrs.field(default=(), converter=_tuple)
    tunables: tuple = attrs.field(default=(), converter=lambda v: tuple(sorted(dict(v or {}).items())))

    def __repr__(self) -> str:
        defaults = Config.__new__(Config)
        Config.__init__(defaults)
        fields = []
        for field in attrs.fields(Config):
            value = getattr(self, field.name)
            if value == getattr(defaults, field.name):
                continue
            if field.name == "tunables":
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            fields.append(f"{field.name}={value!r}")
        return "tfn.Config(" + ", ".join(fields) + ")"

    __str__ = __repr__
