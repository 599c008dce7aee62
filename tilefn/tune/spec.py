"""ConfigSpec: the tunable knobs of one Program and their domains, derived from the Program."""
from __future__ import annotations

import math
import random
from typing import Any, Callable

import attrs

from ..config import Config
from ..errors import TilefnError
from ..lower import backend
from ..lower.defaults import default_config
from ..lower.passes import canonical
from ..lower.rewrites.reduction_loops import looped_reductions
from ..lower.shared_memory import MAX_SHARED_BYTES, dot_operands, shared_bytes
from ..lower.sites import sites_of
from ..lower.target import device_of, has_tma
from ..trace.ir import Program
from ..trace.queries import dot_roles, kernel_eqns, largest_value, next_power_of_2

MAX_TILE_ELEMENTS = 1 << 16  # more than this in one value spills registers on any current GPU
MAX_PER_THREAD = 256  # elements of one value per thread: beyond it ptxas spills and can take minutes
WARPS = (1, 2, 4, 8, 16, 32)
L2_GROUPS = (1, 4, 8, 16)  # 1 = no grouping
RANGE_STAGES = (0, 2, 3, 4)  # 0 = the kernel-wide num_stages
LIST_FIELDS = {"block_sizes": None, "reduction_loops": None, "l2_groupings": 1, "range_num_stages": 0,
               "indexing": "pointer", "atomic_indexing": "pointer"}
# the pid_type knob also sets persistent_flatten ("+flatten"), which means something only with a persistent
# pid_type (a knob of its own would step to it from "flat"); "xyz" excludes l2_groupings
FLATTENED = "+flatten"
SEARCHED_PID_TYPES = ("flat", "persistent_interleaved", "persistent_interleaved" + FLATTENED,
                      "persistent_blocked", "persistent_blocked" + FLATTENED)
STAGES = (1, 2, 3, 4, 5)


@attrs.frozen
class Knob:
    """One tunable position: a Config field (and an index into it, for list fields)."""

    field: str
    index: int | None
    choices: tuple

    def get(self, config: Config):
        value = getattr(config, self.field)
        if self.field == "tunables":  # indexed by the register_tunable name
            return dict(value).get(self.index)
        if self.field == "pid_type":
            return value + (FLATTENED if config.persistent_flatten else "")
        if self.index is None or isinstance(value, str):  # ((atomic_)indexing: one string for every access)
            return value
        return value[self.index] if self.index < len(value) else LIST_FIELDS.get(self.field)

    def nearest(self, value):
        """The choice closest to `value` (by position for numbers, else the first)."""
        if value in self.choices:
            return value
        numbers = [c for c in self.choices if isinstance(c, (int, float)) and c is not None]
        if isinstance(value, (int, float)) and numbers:
            return min(numbers, key=lambda c: (abs(math.log2(max(c, 1)) - math.log2(max(value, 1))), c))
        return self.choices[0]


def set_value(values: dict, knob: Knob, value) -> None:
    if knob.index is None:
        values[knob.field] = value
    else:
        values.setdefault(knob.field, {})[knob.index] = value


def pow2_range(low: int, high: int) -> tuple:
    """The powers of two in [low, high] (low >= 1)."""
    return tuple(1 << i for i in range(low.bit_length() - 1, high.bit_length()) if low <= 1 << i <= high)


def _sizes(traced: Program, program: Program, config: Config) -> list:
    """`config`'s size per block of `program` (`traced` after rewrites): explicit sizes win, blocks
    `config` leaves out (ones only other tunable values add) take their defaults, as lowering does."""
    sizes = list(config.block_sizes)
    if len(sizes) < len(traced.blocks):
        sizes += default_config(traced).block_sizes[len(sizes):]
    sizes += [None] * (len(program.blocks) - len(sizes))
    for block in program.blocks:  # chunk blocks that reduction_loops added, and explicit sizes
        if block.fixed:
            sizes[block.id] = block.fixed
    return sizes


@attrs.frozen
class ConfigSpec:
    """Every knob's domain for one Program, plus the heuristic default as the starting point.

    `retrace(tunables) -> Program` (optional) gives the Program under other `register_tunable`
    values, so size checks see what a candidate's tunables build (else `program` is used).
    """

    program: Program
    knobs: tuple
    base: Config  # the heuristic default (with the program's tunable values): what unset knobs keep
    retrace: Callable | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def of(cls, program: Program, retrace: Callable | None = None) -> "ConfigSpec":
        """The knobs of `program`: block sizes, then one knob per (Config list field, knob site)."""
        program = canonical(program)
        sites = sites_of(program)
        eqns = kernel_eqns(program)
        roles = dot_roles(eqns)
        knobs = []
        for block in program.blocks:
            if block.fixed:
                continue
            extent = next_power_of_2(block.extent or 4096)
            low = 16 if roles.get(block.id) in ("m", "n", "k") else 1
            high = min(max(extent, low), 256 if block.id in roles else 4096)
            knobs.append(Knob("block_sizes", block.id, pow2_range(low, high)))
        for site in sites.of_field("reduction_loops"):
            chunks = pow2_range(128, next_power_of_2(site.facts["extent"]) // 2)
            if chunks:
                knobs.append(Knob("reduction_loops", site.positions["reduction_loops"], (None, *chunks)))
        if roles:  # matrix products: L2-friendly tile order and per-loop software pipelining
            knobs += [Knob("l2_groupings", s.positions["l2_groupings"], L2_GROUPS) for s in sites.of_field("l2_groupings")]
            knobs += [Knob("range_num_stages", s.positions["range_num_stages"], RANGE_STAGES)
                      for s in sites.of_field("range_num_stages")]
            flattens = "flatten" in backend.compat().range_kwargs()
            knobs.append(Knob("pid_type", None, tuple(p for p in SEARCHED_PID_TYPES if flattens or FLATTENED not in p)))
        default = default_config(program)
        tma = has_tma(program)
        for site in sites.of_field("indexing"):
            forms = tuple(f for f in site.facts["forms"] if tma or f != "tensor_descriptor")
            if len(forms) > 1:
                knobs.append(Knob("indexing", site.positions["indexing"], forms))
        if device_of(program).type == "cuda" and tma:  # (the CPU interpreter has no descriptor atomics)
            knobs += [Knob("atomic_indexing", s.positions["atomic_indexing"], s.facts["forms"])
                      for s in sites.of_field("atomic_indexing") if len(s.facts["forms"]) > 1]
        knobs.append(Knob("num_warps", None, WARPS))
        knobs.append(Knob("num_stages", None, STAGES if roles else (1, 2, 3)))
        knobs += [Knob("tunables", t.name, t.choices) for t in program.tunables]
        base = attrs.evolve(default, tunables={t.name: t.value for t in program.tunables})
        return cls(program, tuple(knobs), base, retrace)

    def program_for(self, config: Config) -> Program | None:
        """The Program `config`'s tunables build (None if tracing with them fails)."""
        if self.retrace is None or not self.program.tunables or config.tunables == self.base.tunables:
            return self.program
        try:
            return canonical(self.retrace(config.tunables))
        except TilefnError:
            return None

    # --- building configs ---------------------------------------------------------------
    def build(self, values: dict, base: Config | None = None) -> Config:
        """A Config from {field: value or {index: value}} over `base` (default: the heuristic default).

        Knobs `values` leaves out keep the spec's base values; fields no knob covers keep `base`'s.
        """
        fields = {}
        for field, unset in LIST_FIELDS.items():
            value = getattr(self.base, field)
            current = [] if isinstance(value, str) else list(value)  # (the default's (atomic_)indexing: "pointer")
            for index, value in values.get(field, {}).items():
                current += [unset] * (index + 1 - len(current))
                current[index] = value
            while current and current[-1] == unset and field != "block_sizes":
                current.pop()
            fields[field] = current
        for field in ("num_warps", "num_stages"):
            fields[field] = values.get(field, getattr(self.base, field))
        if "pid_type" in values:  # a knob of matrix-product kernels only (with persistent_flatten)
            pid_type, flatten, _ = values["pid_type"].partition(FLATTENED)
            fields["pid_type"], fields["persistent_flatten"] = pid_type, bool(flatten)
        fields["tunables"] = {**dict(self.base.tunables), **values.get("tunables", {})}
        return attrs.evolve(base if base is not None else self.base, **fields)

    def values(self, config: Config) -> dict:
        out: dict[str, Any] = {}
        for knob in self.knobs:
            set_value(out, knob, knob.get(config))
        return out

    def default(self) -> Config:
        """The heuristic default (what `tfn.jit` runs without a config), snapped to the domains.

        If even the default cannot be repaired (a value larger than MAX_TILE_ELEMENTS at any
        block size), it is returned as it is: tuning can still try it.
        """
        try:
            return self.normalize(self.base)
        except ValueError:
            return self.base

    def random(self, rng: random.Random) -> Config:
        values: dict = {}
        for knob in self.knobs:
            set_value(values, knob, rng.choice(knob.choices))
        return self.normalize(self.build(values))

    def neighbors(self, config: Config) -> list[Config]:
        """Configs one step away on exactly one knob (the adjacent choices), deduplicated.

        Only valid configs: a step that would need repairing (shrinking another knob to fit) is
        left out, so every neighbour differs from `config` in that one knob alone.
        """
        out, seen = [], {config}
        for knob in self.knobs:
            current = knob.nearest(knob.get(config))
            position = knob.choices.index(current)
            for step in (-1, 1):
                if 0 <= position + step < len(knob.choices):
                    values = self.values(config)
                    set_value(values, knob, knob.choices[position + step])
                    candidate = self.build(values, base=config)
                    if candidate in seen or not self.fits(candidate):
                        continue
                    seen.add(candidate)
                    out.append(candidate)
        return out

    def largest_value(self, config: Config) -> int:
        """Elements of the largest value the kernel holds under `config` (after its looped reductions)."""
        traced = self.program_for(config)
        program = looped_reductions(traced, config)
        return largest_value(kernel_eqns(program), attrs.evolve(config, block_sizes=_sizes(traced, program, config)))

    def fits(self, config: Config) -> bool:
        """The largest value fits in registers, and pipelined dot operands fit in shared memory
        (False when the Program of `config`'s tunables fails to trace)."""
        if self.program_for(config) is None:
            return False
        most = min(MAX_TILE_ELEMENTS, MAX_PER_THREAD * 32 * (config.num_warps or 4))
        return self.largest_value(config) <= most and self.dot_shared_bytes(config) <= MAX_SHARED_BYTES

    def dot_shared_bytes(self, config: Config) -> int:
        """Shared memory the matrix-product operands need (`lower/shared_memory.py`'s estimate)."""
        traced = self.program_for(config)
        sized = attrs.evolve(config, block_sizes=_sizes(traced, traced, config))
        return shared_bytes(traced, dot_operands(traced), sized)

    def normalize(self, config: Config) -> Config:
        """Snap every knob to its domain, then shrink until the largest value fits in registers.

        Shrinking halves the largest block first; when every block is at its smallest, whole rows
        are reduced in chunks (reduction_loops), smaller ones step by step. Fields no knob covers
        keep `config`'s values. Raises ValueError when no repair exists.
        """
        values = {}
        for knob in self.knobs:
            value = knob.get(config)
            if value is None and None not in knob.choices:  # unset: the default's value
                value = knob.get(self.base)
            set_value(values, knob, knob.nearest(value))
        fixed = self.build(values, base=config)
        blocks = [k for k in self.knobs if k.field == "block_sizes"]
        rows = [k for k in self.knobs if k.field == "reduction_loops"]
        while not self.fits(fixed):
            shrinkable = [k for k in blocks if k.choices.index(k.get(fixed)) > 0]
            if shrinkable:
                knob = max(shrinkable, key=lambda k: k.get(fixed))
                smaller = knob.choices[knob.choices.index(knob.get(fixed)) - 1]
            else:  # None (whole row) -> the largest chunk -> smaller chunks
                chunkable = [k for k in rows if k.get(fixed) is None or k.choices.index(k.get(fixed)) > 1]
                if not chunkable:
                    raise ValueError(f"{config} holds a value too large for registers (over {MAX_TILE_ELEMENTS} "
                                     f"elements, or {MAX_PER_THREAD} per thread) even with its smallest blocks")
                knob = max(chunkable, key=lambda k: k.get(fixed) or math.inf)
                current = knob.get(fixed)
                smaller = knob.choices[-1] if current is None else knob.choices[knob.choices.index(current) - 1]
            values = self.values(fixed)
            set_value(values, knob, smaller)
            fixed = self.build(values, base=config)
        return fixed
