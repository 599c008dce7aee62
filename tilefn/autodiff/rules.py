"""Transpose rules: for each primitive, the cotangents of its inputs from those of its outputs.

`TRANSPOSE[prim](b, eqn, cts) -> one cotangent (a Var) or None per input of `eqn`, where `cts` holds one
cotangent or None per output and `b` is the Builder the backward equations go into. The forward's values
(inputs and outputs) are in scope; cotangents of half-precision values are float32: the backward recomputes the forward first (`tilefn.autodiff.kernel`).
Rules for loads, stores, loops and atomics need the whole kernel and live in `kernel.py`/`memory.py`;
a primitive with no rule here or there is refused, naming it and the user's line (`refuse`).
"""
from __future__ import annotations

import math

from ..errors import UnsupportedOp
from ..rule_table import RuleTable
from ..trace import primitives as p
from .builder import cotangent_dtype, is_float_value

TRANSPOSE = RuleTable("transpose rule")  # Primitive -> (Builder, Eqn, output cotangents) -> input cotangents

P = p.P


def refuse(eqn, why: str = "") -> UnsupportedOp:
    """The error for a primitive tfn.vjp cannot differentiate, at the user's line."""
    return UnsupportedOp(f"tfn.vjp: no backward for the primitive `{eqn.prim}`{why}; compute it outside "
                         "the differentiated kernel, or give the kernel a backward with kernel.def_vjp(bwd)",
                         source=eqn.source)


def _pointwise(partials):
    """A rule from `partials(b, g, y, *xs) -> per input, g times d y / d x` (full output shape, or None)."""
    def rule(b, eqn, cts):
        (g,), (y,) = cts, eqn.outputs
        if g is None:
            return (None,) * len(eqn.inputs)
        out = []
        for x, ct in zip(eqn.inputs, partials(b, g, y, *eqn.inputs)):
            if ct is None or not is_float_value(x):
                out.append(None)
                continue
            out.append(b.convert(b.unbroadcast(ct, x.type.shape), cotangent_dtype(x.type.dtype)))
        return tuple(out)

    return rule


def _zero(b, eqn, cts):
    """Piecewise-constant or integer-valued results: their inputs get no cotangent."""
    return (None,) * len(eqn.inputs)


_UNARY = {
    "neg": lambda b, g, y, x: (b.neg(g),),
    "exp": lambda b, g, y, x: (b.mul(g, y),),
    "exp2": lambda b, g, y, x: (b.mul(g, b.mul(y, math.log(2.0))),),
    "log": lambda b, g, y, x: (b.div(g, x),),
    "log2": lambda b, g, y, x: (b.div(g, b.mul(x, math.log(2.0))),),
    "log1p": lambda b, g, y, x: (b.div(g, b.add(x, 1.0)),),
    "expm1": lambda b, g, y, x: (b.mul(g, b.add(y, 1.0)),),
    "sqrt": lambda b, g, y, x: (b.div(b.mul(g, 0.5), y),),
    "rsqrt": lambda b, g, y, x: (b.mul(b.mul(g, -0.5), b.mul(y, b.mul(y, y))),),
    "reciprocal": lambda b, g, y, x: (b.neg(b.mul(g, b.mul(y, y))),),
    "sin": lambda b, g, y, x: (b.mul(g, b.op(P["cos"], x)),),
    "cos": lambda b, g, y, x: (b.neg(b.mul(g, b.op(P["sin"], x))),),
    "tan": lambda b, g, y, x: (b.mul(g, b.add(b.mul(y, y), 1.0)),),
    "tanh": lambda b, g, y, x: (b.mul(g, b.sub(1.0, b.mul(y, y))),),
    "sigmoid": lambda b, g, y, x: (b.mul(g, b.mul(y, b.sub(1.0, y))),),
    "erf": lambda b, g, y, x: (b.mul(g, b.mul(2.0 / math.sqrt(math.pi), b.op(P["exp"], b.neg(b.mul(x, x))))),),
    "abs": lambda b, g, y, x: (b.mul(g, b.op(P["sign"], x)),),
}


def _div(b, g, y, x1, x2):
    return b.div(g, x2), b.neg(b.div(b.mul(g, y), x2))


def _pow(b, g, y, base, exponent):
    d_base = b.mul(g, b.mul(exponent, b.op(P["pow"], base, b.sub(exponent, 1))))
    if not is_float_value(exponent):
        return d_base, None
    safe = b.where(b.op(P["eq"], base, 0), 1.0, base)  # torch: no gradient into the exponent where the base is 0
    return d_base, b.where(b.op(P["eq"], base, 0), 0.0, b.mul(g, b.mul(y, b.op(P["log"], safe))))


def _select(first: str):
    """maximum/minimum (and fmax/fmin): the chosen side gets the cotangent, ties split it, as torch."""
    def partials(b, g, y, x1, x2):
        half = b.mul(g, 0.5)
        tie = b.op(P["eq"], x1, x2)
        first_wins = b.op(P[first], x1, x2)
        return (b.where(tie, half, b.where(first_wins, g, 0.0)),
                b.where(tie, half, b.where(first_wins, 0.0, g)))

    return partials


_BINARY = {
    "add": lambda b, g, y, x1, x2: (g, g),
    "sub": lambda b, g, y, x1, x2: (g, b.neg(g)),
    "mul": lambda b, g, y, x1, x2: (b.mul(g, x2), b.mul(g, x1)),
    "div": _div,
    "pow": _pow,
    "maximum": _select("gt"), "minimum": _select("lt"), "fmax": _select("gt"), "fmin": _select("lt"),
}
for _name, _partials in {**_UNARY, **_BINARY}.items():
    TRANSPOSE.add(P[_name], _pointwise(_partials))
TRANSPOSE.add(P["where"], _pointwise(lambda b, g, y, c, x1, x2: (None, b.where(c, g, 0.0), b.where(c, 0.0, g))))

NO_GRADIENT = ("floor", "ceil", "trunc", "round", "sign", "eq", "ne", "lt", "le", "gt", "ge",
               "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or",
               "bitwise_xor", "bitwise_not", "lshift", "rshift", "isnan", "isinf", "isfinite")
for _name in NO_GRADIENT:
    TRANSPOSE.add(P[_name], _zero)
TRANSPOSE.add(p.argmax_p, _zero)
TRANSPOSE.add(p.argmin_p, _zero)
for _prim in (p.full_p, p.iota_p, p.tile_index_p, p.tile_begin_p, p.tile_end_p, p.tile_id_p, p.tile_len_p,
              p.tile_count_p, p.block_size_p, p.rand_p, p.randn_p, p.randint_p, p.rand4x_p, p.rng_seed_p,
              p.stop_gradient_p):
    TRANSPOSE.add(_prim, _zero)


@TRANSPOSE.register(p.convert_p)
def _convert(b, eqn, cts):
    (g,), (x,) = cts, eqn.inputs
    return (b.convert(g, cotangent_dtype(x.type.dtype)) if g is not None and is_float_value(x) else None,)


def _spread(b, eqn, g):
    """A reduction's cotangent (or its result) back on the input's shape (a reduction transposes to a broadcast)."""
    x = eqn.inputs[0]
    if not eqn.params["keepdim"] and x.type.rank:
        g = b.op(p.expand_dims_p, g, axis=eqn.params["axis"])
    return b.broadcast(g, x.type.shape)


@TRANSPOSE.register(p.reduce_sum_p)
def _reduce_sum(b, eqn, cts):
    (g,) = cts
    return (None if g is None else b.convert(_spread(b, eqn, g), cotangent_dtype(eqn.inputs[0].type.dtype)),)


@TRANSPOSE.register(p.reduce_max_p, p.reduce_min_p)
def _reduce_extreme(b, eqn, cts):
    """torch.amax/amin: the cotangent split evenly between the elements equal to the extreme."""
    (g,), x = cts, eqn.inputs[0]
    if g is None:
        return (None,)
    hit = b.convert(b.op(P["eq"], x, _spread(b, eqn, eqn.outputs[0])), x.type.dtype)
    count = b.op(p.reduce_sum_p, hit, axis=eqn.params["axis"], keepdim=eqn.params["keepdim"])
    return (b.mul(hit, _spread(b, eqn, b.div(g, count))),)


@TRANSPOSE.register(p.broadcast_to_p)
def _broadcast_to(b, eqn, cts):
    (g,), x = cts, eqn.inputs[0]
    return (None if g is None else b.unbroadcast(g, x.type.shape),)


@TRANSPOSE.register(p.expand_dims_p)
def _expand_dims(b, eqn, cts):
    (g,) = cts
    return (None if g is None else b.op(p.squeeze_p, g, axis=eqn.params["axis"]),)


@TRANSPOSE.register(p.squeeze_p)
def _squeeze(b, eqn, cts):
    (g,) = cts
    return (None if g is None else b.op(p.expand_dims_p, g, axis=eqn.params["axis"]),)


@TRANSPOSE.register(p.reshape_p)
def _reshape(b, eqn, cts):
    (g,), x = cts, eqn.inputs[0]
    return (None if g is None else b.op(p.reshape_p, g, shape=tuple(x.type.shape)),)


@TRANSPOSE.register(p.permute_p)
def _permute(b, eqn, cts):
    (g,), perm = cts, eqn.params["perm"]
    inverse = tuple(sorted(range(len(perm)), key=lambda i: perm[i]))
    return (None if g is None else b.op(p.permute_p, g, perm=inverse),)


def _swap_last(b, x):
    rank = x.type.rank
    return b.op(p.permute_p, x, perm=tuple(range(rank - 2)) + (rank - 1, rank - 2))


@TRANSPOSE.register(p.dot_p)
def _dot(b, eqn, cts):
    """out = a @ b (+ acc): a's cotangent g @ b^T, b's a^T @ g, acc's g (dots transpose to dots)."""
    (g,), (x, y, *acc) = cts, eqn.inputs
    if g is None:
        return (None,) * len(eqn.inputs)
    params = dict(eqn.params)
    g_in = b.convert(g, x.type.dtype)

    def product(left, right, like):
        out = b.op(p.dot_p, left, right, out_dtype=params["out_dtype"], precision=params["precision"])
        return b.convert(out, cotangent_dtype(like.type.dtype))

    ct_x = product(g_in, _swap_last(b, y), x) if is_float_value(x) else None
    ct_y = product(_swap_last(b, x), g_in, y) if is_float_value(y) else None
    return (ct_x, ct_y, *(b.convert(g, cotangent_dtype(a.type.dtype)) for a in acc))
