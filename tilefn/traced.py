"""A kernel function traced once per argument signature (and `register_tunable` values) into a Program."""
from __future__ import annotations

import functools

from .config import Config
from .errors import ArgumentError, TilefnError, TracingError
from .signature_cache import CacheInfo, SignatureCache, dynamic_signature_key, signature_key
from .trace.dynamic import bound_sizes, call_sizes, with_extents
from .trace.arguments import arg_key, read
from .trace.binding import Binder
from .trace.captures import capture_key, captures_of
from .trace import state as trace_state
from .trace.host_blocks import host_read
from .trace.ir import Program
from .trace.scalars import Specialize
from .trace.value_reads import merge_reads, read_values
from .trace.tracer import trace


class TracedFunction:
    """`fn` and its Programs, one per (signature, tunables); what `tfn.interpret` and `make_ir` need.

    Float arguments are runtime values, except those of the parameters in `static_argnames` and those
    a trace passes to `tl.specialize` (learned then: `static`), whose values are part of the key."""

    def __init__(self, fn, config: Config | None = None, dot_precision: str = "ieee", static_shapes: bool = True,
                 static_argnames=()):
        self.fn = fn
        self.config = config
        self.static_shapes = static_shapes  # False: sizes and strides symbolic (tilefn.trace.dynamic)
        self._guard_sets: dict = {}  # dynamic signature -> the guard tuples of its Programs, oldest first
        self.dot_precision = dot_precision  # how float32 dots multiply unless a dot says ("ieee", "tf32", "tf32x3")
        self._programs = SignatureCache()
        self._host_read: dict = {}  # key -> ids of the block sizes host code reads (tilefn.trace.host_blocks)
        self._value_reads: dict = {}  # key before them -> the argument values host code reads (trace.value_reads)
        self.captures = captures_of(fn)  # the globals and closure cells the Programs fold in
        self.binder = Binder(fn)
        self.arity = self.binder.arity  # a call of this many positional arguments is flat already
        unknown = [n for n in static_argnames if n not in self.binder.names]
        if isinstance(static_argnames, str) or unknown:
            raise ArgumentError(f"static_argnames of {self.binder.name}() names {unknown or static_argnames!r}: give a "
                                f"tuple of its parameter names {list(self.binder.names)}", source=None)
        self.static = tuple(sorted(self.binder.names.index(n) for n in static_argnames))  # positions keyed by value
        functools.update_wrapper(self, fn)

    def flat(self, args, kwargs) -> tuple:
        """The call's arguments as one value per parameter, defaults applied (`tilefn.trace.binding`)."""
        return self.binder.flat(args, kwargs)

    def key(self, flat: tuple, tunables=()) -> tuple:
        """What a Program (and its executable) is specialised on: the signature of the flat
        arguments, the tunables, the captured values as they are now (`tilefn.trace.captures`) and the
        argument values host code reads (`tilefn.trace.value_reads`)."""
        key = self._unread_key(flat, tunables)
        reads = self._value_reads.get(key)
        return key if reads is None else (key, read_values(reads, flat))

    def _unread_key(self, flat: tuple, tunables=()) -> tuple:
        key = signature_key(flat, {}) if self.static_shapes else self._dynamic_key(flat)
        if self.static:
            key = (key, tuple(arg_key(flat[i], "an argument", static_floats=True) for i in self.static))
        if tunables:
            key = (key, tunables)
        if self.captures:
            key = (key, capture_key(self.captures))
        return key

    def value_check(self, flat: tuple, tunables=()):
        """A check, for a fast path, that later flat arguments give the argument values host code read the
        same values as `flat` (None: this signature's traces read none)."""
        reads = self._value_reads.get(self._unread_key(flat, tunables))
        if reads is None:
            return None
        now = read_values(reads, flat)
        return lambda args: read_values(reads, args) == now

    def _dynamic_key(self, flat: tuple) -> tuple:
        """The dynamic signature and the guards (of a Program traced for it) these sizes satisfy; None in
        the guards' place when no Program traced so far serves them."""
        guards = self.matching_guards(flat)
        return (dynamic_signature_key(flat), tuple(g.key() for g in guards) if guards is not None else None)

    def matching_guards(self, flat: tuple):
        """The guards of the first Program traced for `flat`'s dynamic signature that its sizes satisfy (None: none)."""
        sets = self._guard_sets.get(dynamic_signature_key(flat))
        if sets:
            sizes = call_sizes(flat)
            for guards in sets:
                if all(g.holds(sizes) for g in guards):
                    return guards
        return None

    def guard_check(self, flat: tuple):
        """A check that later flat arguments resolve to the same Program as `flat` (static_shapes=False):
        the first guard set they satisfy is `flat`'s."""
        guards = self.matching_guards(flat)
        return lambda args: self.matching_guards(args) is guards

    def resolved_key(self, flat: tuple, tunables=()) -> tuple:
        """`key`, tracing first when a dynamic signature has no Program whose guards these sizes satisfy."""
        key = self.key(flat, tunables)
        if not self.static_shapes and self._dynamic_key(flat)[1] is None:
            self.trace_and_bind(flat, {}, tunables)
            key = self.key(flat, tunables)
        return key

    def captures_unchanged(self):
        """A check, for a fast path, that the captured values still are what they are now (None: nothing captured)."""
        if not self.captures:
            return None
        captures, now = self.captures, capture_key(self.captures)
        return lambda: capture_key(captures) == now

    def trace_and_bind(self, args, kwargs, tunables=None, block_sizes=None) -> tuple[Program, list]:
        """The Program for these arguments, `register_tunable` values and block sizes (defaults: this
        function's config's), traced once per (signature, tunables, the block sizes host code reads:
        `tilefn.trace.host_blocks`), and its tensor operands."""
        if tunables is None:
            tunables = self.config.tunables if self.config is not None else ()
        if block_sizes is None:
            block_sizes = self.config.block_sizes if self.config is not None else ()
        flat = self.flat(args, kwargs)
        while True:
            try:
                return self._trace_and_bind(flat, tunables, block_sizes)
            except Specialize as request:  # tl.specialize(a float): from now on its parameter is static
                self.static = tuple(sorted({*self.static, *request.params}))

    def settled_key(self, flat: tuple, tunables=()) -> tuple:
        """`key`, once a trace has learned which parameters `tl.specialize` makes static (a caller about
        to compile calls this: it traces if needed, so the key it gets is the one the Program holds)."""
        self.trace_and_bind(flat, {}, tunables)
        return self.key(flat, tunables)

    def _trace_and_bind(self, flat, tunables, block_sizes):
        try:
            key = self.key(flat, tunables)
        except ArgumentError:
            key = None  # tracing names the offending argument
        make = functools.partial(self._trace, flat, tunables, block_sizes)
        if key is not None and not self.static_shapes and self._dynamic_key(flat)[1] is None:
            traced = make()  # a new guard set: the Program is stored under the guards it was traced with
            sets = self._guard_sets.setdefault(dynamic_signature_key(flat), [])
            if all(tuple(g.key() for g in s) != tuple(g.key() for g in traced.guards) for s in sets):
                sets.append(traced.guards)
            key, make = self.key(flat, tunables), (lambda: traced)
        if key is None:
            program = make()
        elif key in self._host_read:  # host code reads block sizes: one Program per their values
            program = self._programs.get_or_make((key, _values(block_sizes, self._host_read[key])), make)
        else:
            program = self._programs.get_or_make(key, make)
            read_blocks = host_read(program)
            if read_blocks:  # (learned at the first trace: from now on keyed on their values too)
                self._host_read[key] = read_blocks
                self._programs.discard(key)
                self._programs.set((key, _values(block_sizes, read_blocks)), program)
        if key is not None and self._learn_value_reads(flat, tunables, program):  # (keyed on their values now)
            self._programs.discard((key, _values(block_sizes, self._host_read[key])) if key in self._host_read else key)
            new = self.key(flat, tunables)
            if key in self._host_read:
                self._host_read[new] = self._host_read[key]
            self._programs.set((new, _values(block_sizes, self._host_read[new])) if new in self._host_read else new,
                               program)
        tensors = [read(flat[path[0]], path[1:]) for path in program.input_paths]
        if not self.static_shapes:  # (block extents: this call's buckets)
            program = with_extents(program, bound_sizes(program.inputs, tensors))
        return program, tensors

    def _learn_value_reads(self, flat, tunables, program) -> bool:
        """Record `program`'s reads of argument values under its signature; True when some are new."""
        if not program.value_reads:
            return False
        plain = self._unread_key(flat, tunables)
        known = self._value_reads.get(plain, ())
        merged = merge_reads(known, program.value_reads)
        if len(merged) == len(known):
            return False
        self._value_reads[plain] = merged
        return True

    def cache_info(self) -> CacheInfo:
        """How many Programs are traced so far (this function compiles nothing itself)."""
        return CacheInfo(len(self._programs), 0, 0)

    def _trace(self, flat, tunables, block_sizes) -> Program:
        try:
            return trace(self.fn, flat, {}, tunables, self.dot_precision, block_sizes, self.static,
                         dynamic=not self.static_shapes)
        except TilefnError as exc:
            raise exc.with_traceback(None) from None


def refuse_nested_call(kernel: TracedFunction) -> None:
    """A kernel called while another is traced (its arguments would be proxies) is a clear error."""
    if trace_state.current() is not None:
        name = f"the kernel {kernel.__name__}()" if hasattr(kernel, "__name__") else "a kernel"
        raise TracingError(f"{name} is called while another kernel is traced: kernels do not nest "
                           "(each is one launch). Call it outside the outer kernel, or make the shared code a "
                           "plain Python function (no @jit) that the kernel calls in its tile loop")


def _values(block_sizes, blocks) -> tuple:
    """The Config's entries for `blocks` (None where it gives none: the trace's default)."""
    return tuple(block_sizes[b] if b < len(block_sizes) else None for b in blocks)


def as_traced(fn) -> TracedFunction:
    """`fn` itself if it is already traced per signature (a `tfn.jit` kernel), else a TracedFunction of it."""
    return fn if isinstance(fn, TracedFunction) else TracedFunction(fn)
