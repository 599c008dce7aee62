"""The mutable state of one trace: builders that collect equations into immutable regions."""
from __future__ import annotations

import contextlib
import threading

from ..errors import TracingError
from .ir import BlockInfo, Eqn, Var


class RegionBuilder:
    """Collects the equations of one loop body (or of the kernel) while it is traced."""

    def __init__(self, parent: "RegionBuilder | None"):
        self.parent = parent
        self.eqns: list[Eqn] = []
        self.closed = False
        self.source = None  # the user's `for ... in tl.tile(...)` line
        self.loop = None  # the TileLoop whose body this is (its handles and bounds); None for the kernel

    def encloses(self, other: "RegionBuilder") -> bool:
        """True when `other` is this region or nested inside it."""
        while other is not None:
            if other is self:
                return True
            other = other.parent
        return False


class TraceState:
    """Everything one call of `make_ir` accumulates."""

    def __init__(self, tunable_values=(), dot_precision: str = "ieee", block_values=()):
        self.dot_precision = dot_precision  # how float32 dots multiply unless a dot says (tilefn.trace.ops.matmul)
        self.tunable_values: dict = dict(tunable_values)  # the Config's register_tunable values
        self.tunables: dict = {}  # name -> Tunable, in registration order
        self.host_eqns: list[Eqn] = []
        self.kernel: RegionBuilder | None = None  # the kernel's top-level region, once a loop opened
        self.region: RegionBuilder | None = None  # the innermost open loop body
        self.blocks: list[BlockInfo] = []
        self.block_values: tuple = tuple(block_values)  # the Config's block sizes, for host code that reads one
        self.tile_count = 0
        self.tile_vars: dict[int, Var] = {}  # tile number -> the var of its Tile handle
        self.tiles: dict = {}  # tile number -> its Tile handle (static bounds: tilefn.trace.ops.random)
        self.open_tiles: list = []  # the Tile handles of the loops open now, outermost first
        self.jagged: dict = {}  # tile number of an open jagged loop -> its parent (tilefn.trace.jagged)
        self.hints: dict[Var, str] = {}
        self.consts: dict[int, tuple] = {}  # id(tensor) -> (Var, tensor)
        self.captures: tuple = ()  # the kernel function's globals and closure cells (tilefn.trace.captures)
        self.captured: dict = {}  # Var of a captured tensor -> the Capture it is read through
        self.loops_closed = 0
        self.phase = 0  # tl.barrier()s passed between top-level loops so far (each starts a phase)
        self.host_after_loop: list[tuple[int, Eqn]] = []  # (top-level loops closed so far, eqn)
        self.eqn_count = 0
        self.dynamic = False  # sizes of tensor arguments are symbolic (tfn.jit(static_shapes=False))
        self.guards: list = []  # facts decided on symbolic sizes (tilefn.trace.sizes.guard)
        self.size_count = self.stride_count = 0  # SizeVars made so far (their names: s0, st0, ...)
        self.flat: tuple = ()  # the call's flat arguments (real tensors: host reads of values, value_reads.py)
        self.arguments: dict = {}  # Var of a tensor argument -> its path in `flat`
        self.name_copies: set = set()  # Vars of the values `a = b` made (tilefn.trace.branches.copy)
        self.value_reads: list = []  # ValueRead per host read of an argument's value (tilefn.trace.value_reads)

    @property
    def in_device(self) -> bool:
        return self.region is not None

    def new_block(self, extent, fixed=None) -> int:
        self.blocks.append(BlockInfo(len(self.blocks), extent, fixed))
        return len(self.blocks) - 1

    def new_tile_number(self) -> int:
        self.tile_count += 1
        return self.tile_count - 1

    def new_site(self, prim: str) -> str:
        """A stable id for the next equation, unique in this trace ("load_3"): rewrites keep it."""
        self.eqn_count += 1
        return f"{prim}_{self.eqn_count - 1}"

    def emit(self, eqn: Eqn) -> None:
        if self.region is not None:
            self.region.eqns.append(eqn)
        elif self.kernel is not None:
            self.host_after_loop.append((self.loops_closed, eqn))
        else:
            self.host_eqns.append(eqn)


_local = threading.local()


def current() -> TraceState | None:
    return getattr(_local, "state", None)


def require() -> TraceState:
    state = current()
    if state is None:
        raise TracingError("tilefn.lang functions can only be used inside a kernel traced by tilefn "
                           "(tfn.jit, tfn.make_ir or tfn.interpret)")
    return state


@contextlib.contextmanager
def tracing(tunable_values=(), dot_precision: str = "ieee", block_values=()):
    previous = current()
    _local.state = TraceState(tunable_values, dot_precision, block_values)
    try:
        yield _local.state
    finally:
        _local.state = previous
