"""The code emitter: Triton source lines, readable unique names, and per-dimension lanes and masks."""
from __future__ import annotations

import keyword
import re

import torch

from ..trace.ir import Lit, Var
from . import float8
from ..trace.types import TileDim, TileType
from ..trace.queries import next_power_of_2, producers, readers, used_vars

TL_DTYPES = {
    torch.float64: "tl.float64", torch.float32: "tl.float32", torch.float16: "tl.float16",
    torch.bfloat16: "tl.bfloat16", torch.int64: "tl.int64", torch.int32: "tl.int32",
    torch.int16: "tl.int16", torch.int8: "tl.int8", torch.uint8: "tl.uint8", torch.bool: "tl.int1",
    **{dtype: f.tl_dtype for dtype, f in float8.FORMATS.items()},
}


def tl_dtype(dtype: torch.dtype) -> str:
    return TL_DTYPES[dtype]


# Names the kernel source uses literally; a user's value of the same name gets another.
RESERVED = frozenset({"pid", "float", "_mul_combine", "_max_nan_combine", "_min_nan_combine", "_bf16_rtne"})
TILE_PREFIXES = ("off_", "offs_", "mask_")  # the names codegen derives from a tile's base name


def _identifier(text: str) -> str:
    text = re.sub(r"\W", "_", text)
    if not text or text[0].isdigit() or keyword.iskeyword(text) or text in ("tl", "triton"):
        text = "v_" + text
    return text


def _operand(expr: str) -> str:
    """`expr` ready for a method call: a name as it is, anything else in parentheses."""
    return expr if expr.isidentifier() else f"({expr})"


class Emitter:
    """Accumulates the kernel body; names every IR variable once, from the user's names when known."""

    def __init__(self, program, config, sites, masks, interpret: bool):
        self.program, self.config, self.sites, self.masks, self.interpret = program, config, sites, masks, interpret
        self.hints = dict(program.hints)
        self.lines: list[str] = []
        self.depth = 1
        self.names: dict = {}
        self.used: set[str] = set(RESERVED)  # names the generated code uses as they are
        self.tiles: dict[int, str] = {}  # tile number -> base name of its lanes ("tm")
        self.block_names: dict[int, str] = {}  # block id -> constexpr name
        self.zero_padded: set = set()  # vars whose masked-off lanes are known to hold 0
        self.tile_ends: dict[int, str] = {}  # tile number -> its loop's end, as source text
        self.needs_helpers: set[str] = set()  # names of codegen's fixed KERNEL_HELPERS the kernel calls
        self.generated_helpers: dict[str, str] = {}  # name -> source of a function made for this kernel (combine fns)
        self.tile_begins: dict[int, str] = {}  # tile number -> its loop's begin, as source text
        self.unmasked_tiles: set[int] = set()  # tiles whose lanes are all valid here (a peeled loop's whole blocks)
        self.squeezed: set = set()  # batch-of-one dot accumulators held without their batch axis (`dots.py`)
        self.unit_free: dict = {}  # var -> (name, axes): its value without one-lane tile axes (`unit_axes.py`)
        self.prologue: list[str] = []  # lines at the top of the kernel (tensor descriptors)
        self.descriptors: dict = {}  # (tensor name, block shape) -> descriptor name
        self.read_vars = used_vars(program)  # vars some equation reads (an atomic whose old values none reads)
        self.readers = readers(program)  # var -> the equations that take it as an input
        self.producers = producers(program)  # var -> the equation that makes it

    def helper_emitter(self) -> "Emitter":
        """An emitter for the body of a helper function beside the kernel: the same program and config, its own
        lines and local names (none shadowing a name the module defines)."""
        helper = Emitter(self.program, self.config, self.sites, self.masks, self.interpret)
        helper.used |= self.used
        return helper

    def knob(self, field: str, eqn):
        """The Config's `field` entry at `eqn`'s knob site (None when unset or not a site of `field`)."""
        return self.sites.value(self.config, field, eqn)

    # --- names --------------------------------------------------------------------------
    def fresh(self, base: str, derived: tuple = ()) -> str:
        """An unused name from `base`; with `derived` prefixes, those prefixed names must be unused too."""
        base = _identifier(base)
        name, i = base, 1
        while any(n in self.used for n in (name, *(p + name for p in derived))):
            name, i = f"{base}_{i}", i + 1
        self.used.update((name, *(p + name for p in derived)))
        return name

    def __call__(self, atom) -> str:
        """The expression for an operand."""
        if isinstance(atom, Lit):
            value = atom.value
            if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
                return f'float("{value}")'
            return repr(value)
        if atom not in self.names:
            self.names[atom] = self.fresh(self.hints.get(atom, "v"))
        return self.names[atom]

    def converted(self, expr: str, src: torch.dtype, dst: torch.dtype) -> str:
        """`expr` (of dtype `src`) as `dst`. Under Triton's CPU interpreter (3.6) a cast to or from
        bfloat16 is right only from or to float32, and float32 -> bfloat16 truncates (whatever
        `fp_downcast_rounding` says): go through float32 and round to nearest even on the bits, as
        the GPU rounds. float8 goes through float32 (`float8.py`)."""
        if src == dst:
            return expr
        if src in float8.FLOAT8:
            return self.converted(float8.to_float32(self, expr, src), torch.float32, dst)
        if dst in float8.FLOAT8:
            return float8.from_float32(self, self.converted(expr, src, torch.float32), dst)
        if self.interpret and torch.bfloat16 in (src, dst) and torch.float32 not in (src, dst):
            expr, src = f"{_operand(expr)}.to(tl.float32)", torch.float32
        if self.interpret and dst == torch.bfloat16:
            self.needs_helpers.add("_bf16_rtne")
            return f"_bf16_rtne({expr})"
        return f"{_operand(expr)}.to({tl_dtype(dst)})"

    def bind(self, var: Var, name: str) -> None:
        self.names[var] = name

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def assign(self, var: Var, expr: str) -> str:
        name = self(var)
        self.emit(f"{name} = {expr}")
        return name

    # --- dimensions ---------------------------------------------------------------------
    def block(self, block_id: int) -> int:
        return self.config.block_sizes[block_id]

    def block_name(self, block_id: int, hint: str = "") -> str:
        if block_id not in self.block_names:
            self.block_names[block_id] = self.fresh(f"BLOCK_{hint.upper() or block_id}")
        return self.block_names[block_id]

    def lanes(self, dim) -> int:
        """How many lanes a dimension occupies in Triton (a power of two)."""
        if isinstance(dim, TileDim):
            return self.block(dim.block)
        return next_power_of_2(dim)

    def tile_masked(self, dim: TileDim) -> bool:
        """Whether a tile dimension's lanes need a bounds mask here: not in a peeled loop's whole blocks
        (`unmasked_tiles`), nor where the block divides the tile's static extent."""
        return dim.tile is not None and dim.tile not in self.unmasked_tiles and self.masks.needs_mask(dim, self.config)

    def dim_mask(self, dim) -> str | None:
        """A 1-d boolean expression of the valid lanes of `dim`, or None when all are valid."""
        if isinstance(dim, TileDim):
            return f"mask_{self.tiles[dim.tile]}" if self.tile_masked(dim) else None
        if dim == next_power_of_2(dim):
            return None
        return f"(tl.arange(0, {next_power_of_2(dim)}) < {dim})"

    @staticmethod
    def expand(expr: str, axis: int, rank: int) -> str:
        """Place a 1-d expression on `axis` of a rank-`rank` value."""
        if rank <= 1:
            return expr
        return f"{expr}[{', '.join(':' if i == axis else 'None' for i in range(rank))}]"

    def value_mask(self, shape, axes=None) -> str | None:
        """The AND of the masks of `shape`'s dims (only `axes`, when given), broadcast to its rank."""
        parts = []
        for axis, dim in enumerate(shape):
            if axes is not None and axis not in axes:
                continue
            mask = self.dim_mask(dim)
            if mask is not None:
                parts.append(self.expand(mask, axis, len(shape)))
        return " & ".join(parts) if parts else None

    def dim_expr(self, dim) -> str:
        """The lanes of a dimension as source text: its block's constexpr name, or a number."""
        if isinstance(dim, TileDim):
            return self.block_name(dim.block, self.tiles.get(dim.tile, ""))
        return str(next_power_of_2(dim))

    def shape_expr(self, shape) -> str:
        return "[" + ", ".join(self.dim_expr(d) for d in shape) + "]"

    def tile_name(self, var: Var) -> str:
        return self.tiles[var.type.dim.tile]

    def is_tile(self, var) -> bool:
        return isinstance(var, Var) and isinstance(var.type, TileType)
