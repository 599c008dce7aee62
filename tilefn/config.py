"""Config: the knobs that pick one compiled variant of a kernel."""
from __future__ import annotations

import attrs

_tuple = lambda v: tuple(v) if v is not None else ()  # noqa: E731


def _lists(value):
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _indexing(value):
    """One string for every access, or a tuple per access (empty: all pointers)."""
    if isinstance(value, str):
        return value
    value = tuple(value or ())
    return value if value else "pointer"


@attrs.frozen
class Config:
    """Block sizes per block symbol and the code-generation knobs; prints as pasteable Python.

    Per-site lists may be short or empty: a missing entry (or None) means the default; a longer
    list than the kernel has sites for is a ConfigError. Which place an index names (Helion's
    numbering, fixed whatever the other knobs do): `tilefn.lower.sites`.

    - `loop_orders[i]`: a permutation of the dims of the i-th top-level loop with 2+ dims, listed
      slowest to fastest varying in the pid decomposition (default: identity, last dim fastest).
    - `l2_groupings[i]`: int >= 1 for that same loop (1 = off): Triton's grouped pid swizzle over
      its two fastest dims in loop order (GROUP tiles of the slower one share the faster one's L2).
      Needs a flat pid (not with pid_type "xyz").
    - `range_unroll_factors`, `range_num_stages` (ints, 0 = unset), `range_multi_buffers`
      (None = unset, False -> disallow_acc_multi_buffer=True), `range_flattens`,
      `range_warp_specializes` (bools): per inner loop the kernel writes (depth first; the chunk
      loops of looped reductions take none, as in Helion), the `tl.range(...)` keyword arguments;
      flatten goes on the outermost `for` of a multi-dim inner loop, the others on the innermost.
    - `static_ranges[i]`: True -> `tl.static_range` (static int bounds only; excludes range_*).
    - `pid_type`: "flat" (one program_id(0), decomposed), "xyz" (one top-level loop of <= 3 dims,
      fastest dim on program_id(0)), "persistent_blocked" / "persistent_interleaved" (min(tiles,
      SM count; 4 on CPU) programs loop over virtual pids: contiguous chunks / strided).
    - `persistent_flatten`, `persistent_warp_specialize` (bools, persistent pid types only): the
      `flatten=True` / `warp_specialize=True` of the persistent loop's `tl.range`. Flattened, Triton
      fuses it with the inner loops into one software-pipelined loop, so the next tile's loads
      overlap this tile's epilogue (Helion: the grid loop's entry of range_flattens /
      range_warp_specializes).
    - `indexing`: "pointer", "block_ptr" or "tensor_descriptor" (TMA, Hopper+) for every load and
      store, or a list with one entry per access in program order (None = pointer). An access
      that cannot take the form (a gather, a masked load, misaligned strides: see
      `tilefn.lower.access_forms` and `tilefn.lower.memory`) uses pointers.
    - `atomic_indexing`: "pointer" or "tensor_descriptor" (a TMA reduction) for every atomic, or a
      list with one entry per atomic in program order; as Helion's knob (see `tilefn.lower.atomics`).
    """

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
    indexing: str | tuple = attrs.field(default="pointer", converter=_indexing)
    atomic_indexing: str | tuple = attrs.field(default="pointer", converter=_indexing)
    pid_type: str = "flat"
    persistent_flatten: bool = False
    persistent_warp_specialize: bool = False
    load_eviction_policies: tuple = attrs.field(default=(), converter=_tuple)
    tunables: tuple = attrs.field(default=(), converter=lambda v: tuple(sorted(dict(v or {}).items())))

    def to_fields(self) -> dict:
        """The fields as JSON-ready values (tuples as lists)."""
        return {k: _lists(v) for k, v in attrs.asdict(self, recurse=False).items()}

    @classmethod
    def from_fields(cls, fields: dict) -> "Config":
        """The Config `to_fields` gave (lists back to tuples: a Config stays hashable)."""
        return cls(**{k: _tuples(v) for k, v in fields.items()})

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
