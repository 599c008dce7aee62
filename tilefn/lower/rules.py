"""One lowering rule per primitive: each emits the Triton source for one equation."""
from __future__ import annotations

import torch

from ..errors import TilefnError
from ..rule_table import RuleTable
from ..trace import primitives as p
from ..trace.abstract_eval import result_dtype
from ..trace.ir import Lit, Var
from ..trace.primitives import BINARY, P, reduction_identity
from ..trace.scalars import DEVICE_DTYPES, is_runtime_scalar
from ..trace.types import PyScalarType, TensorType, TileDim
from . import arrange, atomics, block_lanes, dots, memory, scans, signals, sorting, unit_axes
from .emit import Emitter, tl_dtype
from .erfinv import lower_erfinv
from .float8 import FLOAT8

RULES = RuleTable("lowering rule")  # Primitive -> (emitter, eqn) -> None: emits the equation's Triton source
rule = RULES.register
_HALF = (torch.float16, torch.bfloat16) + FLOAT8  # the floats whose math runs in float32


def out_dtype(eqn) -> torch.dtype:
    return eqn.outputs[0].type.dtype


def cast(em: Emitter, atom, dtype) -> str:
    """`atom` as source text, converted to `dtype` when it is a tensor (or a runtime scalar) of another dtype."""
    if isinstance(atom, Lit):
        return em(atom)
    source = DEVICE_DTYPES[atom.type.kind] if is_runtime_scalar(atom) else atom.type.dtype
    return em(atom) if source == dtype else em.converted(em(atom), source, dtype)


def is_number(atom) -> bool:
    """A Python number operand: a literal or a runtime scalar (weakly typed, as torch treats numbers)."""
    return isinstance(atom, Lit) or is_runtime_scalar(atom)


# --- pointwise ---------------------------------------------------------------------------
_INFIX = {P[name]: text for name, text in {"add": "+", "sub": "-", "mul": "*", "div": "/", "fmod": "%", "eq": "==", "ne": "!=",
          "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "logical_and": "&", "logical_or": "|",
          "logical_xor": "^", "bitwise_and": "&", "bitwise_or": "|", "bitwise_xor": "^",
          "lshift": "<<", "rshift": ">>"}.items()}
_COMPARE = {P[name] for name in ("eq", "ne", "lt", "le", "gt", "ge")}
_LOGICAL = {P[name] for name in ("logical_and", "logical_or", "logical_xor")}


def _promoted(a, b):
    """A value of the dtype torch promotes `a` and `b` to (as `add` would; `where` also takes float8)."""
    return torch.where(torch.tensor(True), a, b)


def _operand_dtype(eqn) -> torch.dtype:
    """The dtype both operands are brought to before the op (torch's promotion of the inputs)."""
    if eqn.prim in _COMPARE or eqn.prim in _LOGICAL:
        return result_dtype(_promoted, "promoted", tuple(a.type for a in eqn.inputs))
    return out_dtype(eqn)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half-precision math runs in float32 (as PyTorch's kernels do) and rounds once per op."""
    return torch.float32 if dtype in _HALF else dtype


def finish(em: Emitter, expr: str, compute: torch.dtype, dtype: torch.dtype) -> str:
    return em.converted(expr, compute, dtype)


@rule(*BINARY)
def _binary(em: Emitter, eqn):
    operands = _operand_dtype(eqn)
    dtype = compute_dtype(operands)
    inputs = eqn.inputs
    if eqn.prim in _COMPARE and operands in _HALF:  # torch compares with the number rounded to the half dtype
        a, b = (_half_number(em, _rounded(x, operands), operands, dtype) for x in inputs)
    else:
        a, b = (cast(em, x, dtype) for x in inputs)
    prim = eqn.prim
    if prim in _INFIX:
        expr = f"{a} {_INFIX[prim]} {b}"
    elif prim in (P["maximum"], P["minimum"]):
        nan = ", propagate_nan=tl.PropagateNan.ALL" if dtype.is_floating_point else ""
        expr = f"tl.{prim}({a}, {b}{nan})"
    elif prim in _NAN_IGNORING:
        expr = _nan_ignoring(em, prim, a, b, dtype)
    elif prim is P["floordiv"]:
        expr = f"tl.floor({a} / {b})" if dtype.is_floating_point else _int_floordiv(em, a, b)
    elif prim is P["remainder"]:
        rem = em.fresh("rem")
        em.emit(f"{rem} = {a} % {b}")
        expr = f"tl.where(({rem} != 0) & (({rem} < 0) != ({b} < 0)), {rem} + {b}, {rem})"
    elif prim is P["pow"]:
        expr = _pow(em, eqn, a, b)
    else:
        raise TilefnError(f"no Triton lowering for {prim}", source=eqn.source)
    em.assign(eqn.outputs[0], finish(em, expr, dtype if prim not in _COMPARE else torch.bool, out_dtype(eqn)))


_NAN_IGNORING = {P["fmax"]: "maximum", P["fmin"]: "minimum"}


def _nan_ignoring(em, prim, a, b, dtype) -> str:
    """torch.fmax/fmin: where exactly one operand is NaN, the other one (both NaN: NaN)."""
    if not dtype.is_floating_point:
        return f"tl.{_NAN_IGNORING[prim]}({a}, {b})"
    x, y = em.fresh("fa"), em.fresh("fb")
    em.emit(f"{x} = {a}")
    em.emit(f"{y} = {b}")
    both = f"tl.{_NAN_IGNORING[prim]}({x}, {y}, propagate_nan=tl.PropagateNan.ALL)"
    return f"tl.where({x} != {x}, {y}, tl.where({y} != {y}, {x}, {both}))"


def _half_number(em: Emitter, atom, half: torch.dtype, dtype: torch.dtype) -> str:
    """An operand as `dtype`; a runtime scalar first rounded to the `half` dtype (as `_rounded` rounds a literal)."""
    if not is_runtime_scalar(atom):
        return cast(em, atom, dtype)
    return em.converted(cast(em, atom, half), half, dtype)


def _rounded(atom, dtype: torch.dtype):
    """A Python-number operand as the nearest value of `dtype` (b > 0.3 compares with bf16's 0.30078125)."""
    if not isinstance(atom, Lit) or isinstance(atom.value, bool):
        return atom
    with torch._C.DisableTorchFunction():
        return Lit(float(torch.tensor(atom.value, dtype=dtype)), atom.type)


def _int_floordiv(em, a, b):
    quotient = em.fresh("quot")
    em.emit(f"{quotient} = {a} // {b}")
    return f"{quotient} - ((({a} % {b}) != 0) & (({a} < 0) != ({b} < 0))).to({quotient}.dtype)"


def _pow(em, eqn, a, b):
    exponent = eqn.inputs[1]
    if isinstance(exponent, Lit) and exponent.value in (2, 3, 4):
        return " * ".join([a] * int(exponent.value))
    if isinstance(exponent, Lit) and exponent.value == 0.5:
        return f"tl.sqrt({a})"
    if isinstance(exponent, Lit) and exponent.value == -1:
        return f"1.0 / {a}"
    dtype = out_dtype(eqn)
    compute = torch.float32 if dtype in _HALF or not dtype.is_floating_point else dtype
    if is_runtime_scalar(exponent):
        return em.converted(_runtime_pow(em, cast(em, eqn.inputs[0], compute), cast(em, exponent, compute)),
                            compute, compute_dtype(dtype))
    expr = f"tl.exp2({cast(em, eqn.inputs[1], compute)} * tl.log2({cast(em, eqn.inputs[0], compute)}))"
    return em.converted(expr, compute, compute_dtype(dtype))  # (_binary's `finish` rounds halves)


def _runtime_pow(em: Emitter, a: str, b: str) -> str:
    """`a ** b` for an exponent known at the call: |a| ** b, negated for a negative base and an odd integer
    exponent, NaN for a negative base and a fractional one; 1 for b == 0 or a == 1 (as torch)."""
    base, power, magnitude = em.fresh("base"), em.fresh("power"), em.fresh("magnitude")
    em.emit(f"{base} = {a}")
    em.emit(f"{power} = {b}")
    em.emit(f"{magnitude} = tl.exp2({power} * tl.log2(tl.abs({base})))")
    integral, odd = f"(tl.floor({power}) == {power})", f"(tl.floor({power} * 0.5) * 2.0 != {power})"
    signed = f"tl.where({base} < 0, tl.where({integral}, tl.where({odd}, -{magnitude}, {magnitude}), float('nan')), {magnitude})"
    return f"tl.where({power} == 0, 1.0, tl.where({base} == 1, 1.0, {signed}))"


_MATH = {P[name]: text for name, text in {"exp": "tl.exp({})", "exp2": "tl.exp2({})", "log": "tl.log({})", "log2": "tl.log2({})",
         "log1p": "tl.log(1.0 + {})", "expm1": "(tl.exp({}) - 1.0)", "sqrt": "tl.sqrt({})",
         "rsqrt": "tl.rsqrt({})", "sin": "tl.sin({})", "cos": "tl.cos({})",
         "tan": "(tl.sin({0}) / tl.cos({0}))", "tanh": "(2.0 * tl.sigmoid(2.0 * {0}) - 1.0)",
         "sigmoid": "tl.sigmoid({})", "erf": "tl.erf({})", "reciprocal": "(1.0 / {})",
         "floor": "tl.floor({})", "ceil": "tl.ceil({})",
         "trunc": "tl.where({0} < 0, tl.ceil({0}), tl.floor({0}))"}.items()}
_PLAIN = {P[name]: text for name, text in {"neg": "-{}", "abs": "tl.abs({})", "bitwise_not": "~{}", "logical_not": "({} == 0)",
          "isnan": "({0} != {0})", "isinf": "(tl.abs({}) == float('inf'))",
          "isfinite": "(tl.abs({}) < float('inf'))",
          "sign": "(({0} > 0).to({0}.dtype) - ({0} < 0).to({0}.dtype))"}.items()}
_BOOL_VALUED = {P[name] for name in ("isnan", "isinf", "isfinite", "logical_not")}


@rule(*_MATH)
def _math(em: Emitter, eqn):
    dtype = out_dtype(eqn)
    compute = torch.float32 if dtype in _HALF else dtype
    x = cast(em, eqn.inputs[0], compute)
    if eqn.prim in (P["floor"], P["ceil"], P["trunc"]) and not eqn.inputs[0].type.dtype.is_floating_point:
        em.bind(eqn.outputs[0], em(eqn.inputs[0]))
        return
    expr = _MATH[eqn.prim].format(x)
    em.assign(eqn.outputs[0], em.converted(expr, compute, dtype))


@rule(*_PLAIN)
def _plain(em: Emitter, eqn):
    (x,) = eqn.inputs
    compute = compute_dtype(x.type.dtype)
    expr = _PLAIN[eqn.prim].format(cast(em, x, compute))
    em.assign(eqn.outputs[0], finish(em, expr, compute if compute != x.type.dtype or eqn.prim not in _BOOL_VALUED else out_dtype(eqn), out_dtype(eqn)))


@rule(P["round"])
def _round(em: Emitter, eqn):
    x = cast(em, eqn.inputs[0], torch.float32)
    r = em.fresh("rounded")
    em.emit(f"{r} = tl.floor({x} + 0.5)")
    rounded = f"tl.where(({r} - {x} == 0.5) & ({r} % 2 != 0), {r} - 1.0, {r})"
    em.assign(eqn.outputs[0], em.converted(rounded, torch.float32, out_dtype(eqn)))


@rule(P["where"])
def _where(em: Emitter, eqn):
    cond, a, b = eqn.inputs
    dtype = out_dtype(eqn)
    if dtype in _HALF and (is_number(a) or is_number(b)):
        # a number beside a half tensor: selected in float32 (Triton's CPU interpreter has no bf16
        # constants), as the half value torch would write (then exactly converted back)
        a, b = (cast(em, _rounded(x, dtype), torch.float32) for x in (a, b))
        em.assign(eqn.outputs[0], em.converted(f"tl.where({em(cond)}, {a}, {b})", torch.float32, dtype))
        return
    em.assign(eqn.outputs[0], f"tl.where({em(cond)}, {cast(em, a, dtype)}, {cast(em, b, dtype)})")


@rule(p.stop_gradient_p)
def _stop_gradient(em: Emitter, eqn):
    em.assign(eqn.outputs[0], em(eqn.inputs[0]))


@rule(p.convert_p)
def _convert(em: Emitter, eqn):
    (x,) = eqn.inputs
    dtype = eqn.params["dtype"]
    source = DEVICE_DTYPES[x.type.kind] if is_runtime_scalar(x) else x.type.dtype if isinstance(x, Var) else None
    if source == torch.bool or dtype != torch.bool:
        expr = cast(em, x, dtype)
    else:
        expr = f"({cast(em, x, compute_dtype(source)) if isinstance(x, Var) else em(x)} != 0)"
    em.assign(eqn.outputs[0], expr)
    if x in em.zero_padded:
        em.zero_padded.add(eqn.outputs[0])


# --- reductions and scans ----------------------------------------------------------------
_TL_REDUCE = {p.reduce_sum_p: "tl.sum", p.reduce_prod_p: None, p.reduce_max_p: "tl.max",
              p.reduce_min_p: "tl.min", p.argmax_p: "tl.argmax", p.argmin_p: "tl.argmin"}


_NAN_COMBINE = {p.reduce_max_p: "_max_nan_combine", p.reduce_min_p: "_min_nan_combine"}


@rule(*_TL_REDUCE)
def _reduce(em: Emitter, eqn):
    (x,) = eqn.inputs
    axis, keepdim = eqn.params["axis"], eqn.params["keepdim"]
    dtype = x.type.dtype
    compute = compute_dtype(dtype)
    if dtype == torch.bool:
        compute = torch.int32
    if eqn.prim in (p.reduce_sum_p, p.reduce_prod_p) and out_dtype(eqn) == torch.int64:
        compute = out_dtype(eqn)  # as torch: integer sums and products accumulate in 64 bits
    value = cast(em, x, compute)
    mask = em.value_mask(x.type.shape, axes={axis})
    if mask is not None and not (eqn.prim is p.reduce_sum_p and x in em.zero_padded):
        masked = em.fresh(f"{em(x)}_masked")
        em.emit(f"{masked} = tl.where({mask}, {value}, {em(Lit(reduction_identity(eqn.prim, compute), None))})")
        value = masked
    if eqn.prim is p.reduce_prod_p:
        expr = f"tl.reduce({value}, {axis}, _mul_combine, keep_dims={keepdim})"
        em.needs_helpers.add("_mul_combine")
    elif eqn.prim in _NAN_COMBINE and compute.is_floating_point and em.interpret:
        # NaN propagation in vectorised reductions: the interpreter runs a combine function as a Python loop
        plain = f"{_TL_REDUCE[eqn.prim]}({value}, axis={axis}, keep_dims={keepdim})"
        nan = f"tl.max(({value} != {value}).to(tl.int32), axis={axis}, keep_dims={keepdim}) > 0"
        expr = f"tl.where({nan}, float('nan'), {plain})"
    elif eqn.prim in _NAN_COMBINE and compute.is_floating_point:  # torch.amax/amin propagate NaN; tl.max/min don't
        expr = f"tl.reduce({value}, {axis}, {_NAN_COMBINE[eqn.prim]}, keep_dims={keepdim})"
        em.needs_helpers.add(_NAN_COMBINE[eqn.prim])
    else:
        expr = f"{_TL_REDUCE[eqn.prim]}({value}, axis={axis}, keep_dims={keepdim})"
    result_dtype = out_dtype(eqn)
    if result_dtype == torch.bool:
        expr = f"({expr} != 0)"
    elif eqn.prim in (p.argmax_p, p.argmin_p):
        expr = em.converted(expr, torch.int32, result_dtype)
    else:
        expr = em.converted(expr, compute, result_dtype)
    em.assign(eqn.outputs[0], expr)


rule(*p.SCANS)(scans.lower_cumulative)
rule(p.associative_scan_p)(lambda em, eqn: scans.lower_associative_scan(em, eqn, lower_eqn))
rule(p.combine_reduce_p)(lambda em, eqn: scans.lower_combine_reduce(em, eqn, lower_eqn))
rule(p.sort_p)(sorting.lower_sort)
rule(p.topk_p)(sorting.lower_topk)
rule(p.gather_p)(sorting.lower_gather)


# --- shapes ------------------------------------------------------------------------------
def _check_pow2_dims(em, eqn, shape):
    for dim in shape:
        if isinstance(dim, int) and em.lanes(dim) != dim:
            raise TilefnError(f"{eqn.prim} of a value with a dimension of size {dim} (not a power of two) "
                              "can't be lowered; pad it or keep it out of reshapes", source=eqn.source)


@rule(p.reshape_p)
def _reshape(em: Emitter, eqn):
    (x,) = eqn.inputs
    _check_pow2_dims(em, eqn, x.type.shape)
    _check_pow2_dims(em, eqn, eqn.params["shape"])
    em.assign(eqn.outputs[0], f"tl.reshape({em(x)}, {em.shape_expr(eqn.params['shape'])})")


@rule(p.squeeze_p)
def _squeeze(em: Emitter, eqn):
    em.assign(eqn.outputs[0], f"tl.reshape({em(eqn.inputs[0])}, {em.shape_expr(eqn.outputs[0].type.shape)})")


@rule(p.permute_p)
def _permute(em: Emitter, eqn):
    (x,), perm = eqn.inputs, tuple(eqn.params["perm"])
    if x in em.unit_free:  # (the permutation of the axes it keeps, `unit_axes`)
        unit_axes.assign_permuted(em, eqn.outputs[0], em.unit_free[x], perm)
    else:
        em.assign(eqn.outputs[0], f"tl.permute({em(x)}, {perm})")


@rule(p.expand_dims_p)
def _expand_dims(em: Emitter, eqn):
    em.assign(eqn.outputs[0], f"tl.expand_dims({em(eqn.inputs[0])}, {eqn.params['axis']})")


@rule(p.broadcast_to_p)
def _broadcast_to(em: Emitter, eqn):
    (x,) = eqn.inputs
    em.assign(eqn.outputs[0], f"tl.broadcast_to({em(x)}, {em.shape_expr(eqn.params['shape'])})")
    if x in em.zero_padded:
        em.zero_padded.add(eqn.outputs[0])


@rule(p.full_p)
def _full(em: Emitter, eqn):
    p = eqn.params
    compute = compute_dtype(p["dtype"]) if p["dtype"] in FLOAT8 else p["dtype"]  # (made in float32, then cast)
    full = f"tl.full({em.shape_expr(p['shape'])}, {em(Lit(p['value'], None))}, {tl_dtype(compute)})"
    em.assign(eqn.outputs[0], em.converted(full, compute, p["dtype"]))


@rule(p.iota_p)
def _iota(em: Emitter, eqn):
    p = eqn.params
    lanes = em.dim_expr(p["stop"]) if isinstance(p["stop"], TileDim) else em.lanes(p["stop"] - p["start"])
    start = f"{p['start']} + " if p["start"] else ""
    em.assign(eqn.outputs[0], f"({start}tl.arange(0, {lanes})).to({tl_dtype(p['dtype'])})")


# --- matrix product ----------------------------------------------------------------------
rule(p.dot_p)(dots.lower_dot)


# --- tiles -------------------------------------------------------------------------------
@rule(p.tile_index_p)
def _tile_index(em: Emitter, eqn):
    em.bind(eqn.outputs[0], f"offs_{em.tile_name(eqn.inputs[0])}")


@rule(p.tile_begin_p)
def _tile_begin(em: Emitter, eqn):
    em.bind(eqn.outputs[0], f"off_{em.tile_name(eqn.inputs[0])}")


def _tile_parts(em, tile_var):
    name = em.tile_name(tile_var)
    return f"off_{name}", em.dim_expr(tile_var.type.dim), em.tile_ends[tile_var.type.dim.tile]


@rule(p.tile_end_p)
def _tile_end(em: Emitter, eqn):
    off, block, end = _tile_parts(em, eqn.inputs[0])
    em.assign(eqn.outputs[0], f"tl.minimum({off} + {block}, {end})")


@rule(p.tile_len_p)
def _tile_len(em: Emitter, eqn):
    off, block, end = _tile_parts(em, eqn.inputs[0])
    em.assign(eqn.outputs[0], f"tl.minimum({end} - {off}, {block})")


@rule(p.tile_count_p)
def _tile_count(em: Emitter, eqn):
    tile = eqn.inputs[0].type.dim.tile
    _, block, end = _tile_parts(em, eqn.inputs[0])
    count = f"({end} - {em.tile_begins[tile]} + {block} - 1) // {block}"
    static = all(text.lstrip("-").isdigit() for text in (end, em.tile_begins[tile]))
    em.assign(eqn.outputs[0], f"tl.full([], {count}, tl.int32)" if static else f"({count}).to(tl.int32)")


@rule(p.tile_id_p)
def _tile_id(em: Emitter, eqn):
    off, block, _ = _tile_parts(em, eqn.inputs[0])
    em.assign(eqn.outputs[0], f"{off} // {block}")


@rule(p.block_size_p)
def _block_size(em: Emitter, eqn):
    em.assign(eqn.outputs[0], f"tl.full([], {em.block_name(eqn.params['block'])}, tl.int32)")


# --- random numbers ----------------------------------------------------------------------
_TL_RANDOM = {p.rand_p: "tl.rand", p.randn_p: "tl.randn"}


def _seed(em: Emitter, seed) -> str:
    """The seed as an int64 scalar (Triton's philox splits its 64 bits into the two key words)."""
    return f"tl.full([], {seed.value}, tl.int64)" if isinstance(seed, Lit) else cast(em, seed, torch.int64)


@rule(*p.RANDOM)
def _random(em: Emitter, eqn):
    seed, offsets = _seed(em, eqn.inputs[0]), em(eqn.inputs[1])
    if eqn.prim is p.randint_p:  # low + |word as int32| % (high - low), in int64 (|INT32_MIN| fits)
        word = em.fresh("word")
        em.emit(f"{word} = tl.randint({seed}, {offsets}).to(tl.int32, bitcast=True).to(tl.int64)")
        low, high = eqn.params["low"], eqn.params["high"]
        em.assign(eqn.outputs[0], f"({low} + tl.abs({word}) % {high - low}).to(tl.int32)")
    elif eqn.prim is p.rand4x_p:
        em.emit(f"{', '.join(em(v) for v in eqn.outputs)} = tl.rand4x({seed}, {offsets})")
    else:
        em.assign(eqn.outputs[0], f"{_TL_RANDOM[eqn.prim]}({seed}, {offsets})")


@rule(p.rng_seed_p)
def _rng_seed(em: Emitter, eqn):
    em.assign(eqn.outputs[0], f"tl.load({em(eqn.inputs[0])}).to(tl.int64)")


rule(p.stack_p)(arrange.lower_stack)
rule(p.split_p)(arrange.lower_split)
rule(p.concat_p)(arrange.lower_concat)
rule(p.flip_p)(arrange.lower_flip)
rule(p.lanes_view_p)(block_lanes.lower_lanes_view)
rule(p.lanes_merge_p)(block_lanes.lower_lanes_merge)
rule(P["erfinv"])(lower_erfinv)


# --- memory ------------------------------------------------------------------------------
rule(p.load_p)(memory.lower_load)
rule(p.store_p)(memory.lower_store)
rule(*p.ATOMIC)(atomics.lower_atomic)
rule(p.signal_p)(signals.lower_signal)
rule(p.wait_p)(signals.lower_wait)


def lower_eqn(em: Emitter, eqn) -> None:
    fn = RULES.get(eqn.prim)
    if fn is None:
        raise TilefnError(f"no Triton lowering for primitive {str(eqn.prim)!r}", source=eqn.source)
    for out in eqn.outputs if isinstance(eqn.outputs, tuple) else (eqn.outputs,):
        em.unit_free.pop(out, None)  # (one an earlier emission of this body made: a peeled loop's)
    axes = unit_axes.elementwise_axes(em, eqn)
    if axes:
        unit_axes.lower_elementwise(em, eqn, fn, axes)
    else:
        fn(em, eqn)


__all__ = ["RULES", "lower_eqn", "TensorType", "PyScalarType", "TileDim"]
