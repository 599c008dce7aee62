"""The primitives, the IR's vocabulary: `Primitive` objects, compared by identity.

Every primitive is `P[name]` (`P["add"]`). The structural and named ones are also module-level
`<name>_p` objects (`load_p`, `loop_p`, `dot_p`, `reduce_sum_p`, ...); the pointwise families
are made from data and map each primitive to the torch function that defines it (`UNARY`,
`BINARY`, `TERNARY`, `POINTWISE`). Rules for a primitive (abstract eval, interpretation,
lowering, printing) live in `RuleTable`s keyed by these objects.
"""
from __future__ import annotations

import functools
import math

import attrs
import torch

from ..rule_table import RuleTable
from . import philox

P = RuleTable("primitive")  # name -> Primitive, every primitive


@attrs.frozen(eq=False, repr=False)
class Primitive:
    """One operation of the IR: hashed and compared by identity, printed as its name."""

    name: str
    effectful: bool = False  # must not be merged or reordered (loads, stores, loops, host calls)

    def __str__(self) -> str:
        return self.name

    __repr__ = __str__

    def __reduce__(self):
        return named, (self.name,)


def named(name: str) -> Primitive:
    """The primitive called `name` (how primitives unpickle: to the one object of that name)."""
    return P[name]


def primitive(name: str, effectful: bool = False) -> Primitive:
    """Make and register the primitive `name`."""
    prim = Primitive(name, effectful)
    P.add(name, prim)
    return prim


def _family(fns: dict) -> dict:
    """Primitives made from data: name -> torch function becomes Primitive -> torch function."""
    return {primitive(name): fn for name, fn in fns.items()}


def _accepting_scalars(fn):
    """torch.maximum, atan2, logical_and... refuse Python numbers (`relu`, `clamp` bind them with
    one): retry with the numbers as 0-d tensors of the dtype torch promotes the pair to."""
    @functools.wraps(fn)
    def call(a, b):
        try:
            return fn(a, b)
        except TypeError:
            if isinstance(a, torch.Tensor) == isinstance(b, torch.Tensor):
                raise
            dtype = torch.result_type(a, b)
            device = a.device if isinstance(a, torch.Tensor) else b.device
            wrap = lambda v: v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=dtype, device=device)  # noqa: E731
            return fn(wrap(a), wrap(b))

    return call


# Pointwise families: prim -> the torch function that defines it (its dtype rule and its meaning).
UNARY = _family({
    "neg": torch.neg, "abs": torch.abs, "exp": torch.exp, "exp2": torch.exp2, "log": torch.log,
    "log2": torch.log2, "log1p": torch.log1p, "expm1": torch.expm1, "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt, "sin": torch.sin, "cos": torch.cos, "tan": torch.tan,
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "erf": torch.erf, "floor": torch.floor,
    "ceil": torch.ceil, "trunc": torch.trunc, "round": torch.round, "sign": torch.sign,
    "reciprocal": torch.reciprocal, "logical_not": torch.logical_not,
    "bitwise_not": torch.bitwise_not, "isnan": torch.isnan, "isinf": torch.isinf,
    "isfinite": torch.isfinite, "erfinv": torch.erfinv,
})
BINARY = _family({name: _accepting_scalars(fn) for name, fn in {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
    "floordiv": torch.floor_divide, "remainder": torch.remainder, "fmod": torch.fmod,
    "pow": torch.pow, "maximum": torch.maximum, "minimum": torch.minimum, "atan2": torch.atan2,
    "fmax": torch.fmax, "fmin": torch.fmin,
    "eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge,
    "logical_and": torch.logical_and, "logical_or": torch.logical_or,
    "logical_xor": torch.logical_xor, "bitwise_and": torch.bitwise_and,
    "bitwise_or": torch.bitwise_or, "bitwise_xor": torch.bitwise_xor,
    "lshift": torch.bitwise_left_shift, "rshift": torch.bitwise_right_shift,
}.items()})
TERNARY = _family({"where": torch.where})
POINTWISE = {**UNARY, **BINARY, **TERNARY}

convert_p = primitive("convert")
stop_gradient_p = primitive("stop_gradient")  # the identity; tfn.vjp gives its input no cotangent

reduce_sum_p = primitive("reduce_sum")
reduce_max_p = primitive("reduce_max")
reduce_min_p = primitive("reduce_min")
reduce_prod_p = primitive("reduce_prod")
argmax_p = primitive("argmax")
argmin_p = primitive("argmin")
REDUCTIONS = {reduce_sum_p: torch.sum, reduce_max_p: torch.amax, reduce_min_p: torch.amin,
              reduce_prod_p: torch.prod, argmax_p: torch.argmax, argmin_p: torch.argmin}
cumsum_p = primitive("cumsum")
cumprod_p = primitive("cumprod")
SCANS = {cumsum_p: torch.cumsum, cumprod_p: torch.cumprod}  # params: axis, reverse
# User combine functions: params `combine`, a Region of scalar equations (left values..., right values...) ->
# combined values. A scan keeps the shape (axis, reverse); a reduction drops `axis` (keepdim, and `other`:
# the padding value the user promises is the combine's identity, or None: padded lanes are skipped).
associative_scan_p = primitive("associative_scan")
combine_reduce_p = primitive("combine_reduce")
sort_p = primitive("sort")  # along the last axis -> (values, int64 indices); params: descending
topk_p = primitive("topk")  # the k largest (or smallest) along the last axis, sorted; params: k, largest
gather_p = primitive("gather")  # (src, index) -> src's values at `index` along `axis` (torch.gather)

reshape_p = primitive("reshape")
permute_p = primitive("permute")
expand_dims_p = primitive("expand_dims")
squeeze_p = primitive("squeeze")
broadcast_to_p = primitive("broadcast_to")
full_p = primitive("full")
iota_p = primitive("iota")
dot_p = primitive("dot")

# Random numbers: (seed, offsets) -> one value per offset, a pure function of both (Philox, as
# Triton's tl.rand/randn/randint); prim -> the eager definition (tilefn.trace.philox).
rand_p = primitive("rand")
randn_p = primitive("randn")
randint_p = primitive("randint")
rand4x_p = primitive("rand4x")  # four outputs: one uniform per Philox word
RANDOM = {rand_p: philox.rand, randn_p: philox.randn, randint_p: philox.randint, rand4x_p: philox.rand4x}
rng_seed_p = primitive("rng_seed")  # a 1-element host tensor -> its value, an int64 seed

tile_index_p = primitive("tile_index")
tile_begin_p = primitive("tile_begin")
tile_end_p = primitive("tile_end")
tile_id_p = primitive("tile_id")
tile_len_p = primitive("tile_len")  # the valid lanes of a tile (a ragged edge tile has fewer)
tile_count_p = primitive("tile_count")  # the number of tiles of its loop dimension
block_size_p = primitive("block_size")  # a block size symbol's value (params: block)
# A value over blocks' full lanes inside a loop those blocks size (tilefn.trace.block_lanes): `lanes_view`
# sees it on the tiles' lanes (params: dims, the tiles' TileDims); `lanes_merge(new, old)` writes the tiles'
# valid lanes of `new` back over `old` (the lanes past a ragged edge tile keep their values).
lanes_view_p = primitive("lanes_view")
lanes_merge_p = primitive("lanes_merge")

stack_p = primitive("stack")  # n values of one shape -> shape + (n,): along a new last axis
split_p = primitive("split")  # a value whose last axis is 2 -> its two halves (tl.split)
concat_p = primitive("concat")  # values of static sizes along `axis` (the rest alike), end to end (torch.cat)
flip_p = primitive("flip")  # reversed along `axis` (a tile's valid lanes only)

load_p = primitive("load", effectful=True)
store_p = primitive("store", effectful=True)
loop_p = primitive("loop", effectful=True)
# An `if` on a device scalar: (pred) -> the results of params `region` (taken) or `orelse`; both are
# Regions without params that yield one value per output.
cond_p = primitive("cond", effectful=True)
# A `while` on a device scalar: (cond0, *inits) -> the carries once the condition is false; the body
# Region's params are the carries, its results (next condition, *next carries).
while_p = primitive("while", effectful=True)
kernel_p = primitive("kernel", effectful=True)
host_p = primitive("host", effectful=True)

# Atomic read-modify-writes, one element per lane; each returns the old values. The function is the
# update the interpreter applies, lane by lane: new = fn(old, value).
ATOMICS = {primitive(f"atomic_{name}", effectful=True): fn for name, fn in {
    "add": torch.add, "and": torch.bitwise_and, "or": torch.bitwise_or, "xor": torch.bitwise_xor,
    "max": torch.maximum, "min": torch.minimum, "xchg": lambda old, value: value}.items()}
atomic_cas_p = primitive("atomic_cas", effectful=True)  # (target, *index, expected, value)
ATOMIC = frozenset({*ATOMICS, atomic_cas_p})  # inputs (target, *index, *values[, mask]): the mask when `masked`


def atomic_operands(eqn) -> tuple:
    """An atomic's (index inputs, values (cas: expected, value), mask or None): lanes the mask keeps update."""
    rest = list(eqn.inputs[1:])
    mask = rest.pop() if eqn.params["masked"] else None
    count = 2 if eqn.prim is atomic_cas_p else 1
    return rest[:-count], rest[-count:], mask


# Signal pads (hl.signal / hl.wait, tilefn.trace.signals): (pad, *index). signal sets or adds `signal`
# (op "atomic_cas": once the entries equal `wait_for`) and returns the old values; wait spins until
# every entry equals `signal` (op "atomic_cas": then swaps in `update`) and returns nothing.
signal_p = primitive("signal", effectful=True)
wait_p = primitive("wait", effectful=True)
SIGNALS = frozenset({signal_p, wait_p})
WRITES = frozenset({store_p, *ATOMIC, *SIGNALS})  # primitives that write memory: their first input, the target


def reduction_identity(prim: Primitive, dtype: torch.dtype):
    """The value a reduction ignores (what masked-off lanes hold): 0, 1, or the dtype's extreme."""
    if prim is reduce_sum_p:
        return 0
    if prim is reduce_prod_p:
        return 1
    low = prim in (reduce_max_p, argmax_p)
    if dtype.is_floating_point:
        return -math.inf if low else math.inf
    info = torch.iinfo(dtype if dtype != torch.bool else torch.int32)
    return info.min if low else info.max
