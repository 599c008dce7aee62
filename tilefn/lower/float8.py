"""float8 casts as torch defines them: round to nearest even from float32 (float64, ints and halves
go through float32 first, as torch's casts do); float8_e4m3fn saturates at +-448 (infinities too) on
the CPU, while torch's CUDA cast gives NaN past 464 (what rounds above 448) and for infinities (measured
on the H200, torch 2.11), so each device follows its own torch; float8_e5m2 overflows to infinity; NaN
stays NaN.

Triton's CPU interpreter gets these wrong (NaN, infinities, overflow, subnormals, float64), so under
it the casts are integer code on the bits (`HELPERS`, exact). On the GPU, float8 -> float32 and
float32 -> float8_e4m3fn are the hardware's conversions (sm_89+: `cvt.rn.satfinite`, the same rule),
while float32 -> float8_e5m2 keeps the bit code: the hardware's saturates where torch overflows.
"""
from __future__ import annotations

import attrs
import torch

FLOAT8 = (torch.float8_e4m3fn, torch.float8_e5m2)


@attrs.frozen
class Float8Format:
    name: str  # of the helpers: _f32_to_<name>, _<name>_to_f32
    tl_dtype: str
    mantissa_bits: int
    bias: int
    saturates: bool  # out-of-range values give the largest finite value (else infinity)


FORMATS = {
    torch.float8_e4m3fn: Float8Format("f8e4m3fn", "tl.float8e4nv", 3, 7, True),
    torch.float8_e5m2: Float8Format("f8e5m2", "tl.float8e5", 2, 15, False),
}
_F32_BITS = {448.0: 0x43E00000}


def _encoder(f: Float8Format) -> str:
    shift = 23 - f.mantissa_bits
    smallest_normal_exp = 127 + 1 - f.bias  # biased float32 exponent of the format's smallest normal
    rebias = (127 - f.bias) << 23
    sub_shift = 23 - (f.bias - 1 + f.mantissa_bits) + 127  # shift = sub_shift - float32 exponent field
    if f.saturates:  # e4m3fn: no infinity; 0x7E is 448, 0x7F NaN
        overflow = f"    q = tl.where(mag >= {_F32_BITS[448.0]:#x}, 0x7E, q)\n"
        nan = 0x7F
    else:  # e5m2: 0x7C is infinity, 0x7F NaN
        overflow = "    q = tl.minimum(q, 0x7C)\n"
        nan = 0x7F
    return (f"@triton.jit\ndef _f32_to_{f.name}(x):\n"
            "    bits = x.to(tl.uint32, bitcast=True)\n"
            "    mag = bits & 0x7FFFFFFF\n"
            "    exp = mag >> 23\n"
            f"    normal = (mag - {rebias:#x} + {(1 << (shift - 1)) - 1:#x} + ((mag >> {shift}) & 1)) >> {shift}\n"
            "    m = (mag & 0x7FFFFF) | 0x800000\n"
            f"    r = tl.minimum(tl.maximum({sub_shift} - exp.to(tl.int32), 1), 31).to(tl.uint32)\n"
            "    half = (r - r + 1) << (r - 1)\n"  # (a uint32 1)
            "    sub = (m + half - 1 + ((m >> r) & 1)) >> r\n"
            f"    q = tl.where(exp >= {smallest_normal_exp}, normal, sub)\n"
            + overflow +
            f"    q = tl.where(mag > 0x7F800000, {nan:#x}, q)\n"
            "    q = q | ((bits >> 24) & 0x80)\n"
            f"    return q.to(tl.uint8).to({f.tl_dtype}, bitcast=True)\n")


def _decoder(f: Float8Format) -> str:
    m_mask = (1 << f.mantissa_bits) - 1
    e_mask = (1 << (7 - f.mantissa_bits)) - 1
    unit = 2.0 ** -(f.bias - 1 + f.mantissa_bits)  # the value of the lowest subnormal bit
    special = ("    mag = tl.where((b & 0x7F) == 0x7F, 0x7FC00000, mag)\n" if f.saturates else
               f"    mag = tl.where(e == {e_mask}, tl.where(m == 0, 0x7F800000, 0x7FC00000), mag)\n")
    return (f"@triton.jit\ndef _{f.name}_to_f32(x):\n"
            "    b = x.to(tl.uint8, bitcast=True).to(tl.uint32)\n"
            f"    e = (b >> {f.mantissa_bits}) & {e_mask:#x}\n"
            f"    m = b & {m_mask:#x}\n"
            f"    normal = ((e + {127 - f.bias}) << 23) | (m << {23 - f.mantissa_bits})\n"
            f"    sub = (m.to(tl.float32) * {unit!r}).to(tl.uint32, bitcast=True)\n"
            "    mag = tl.where(e == 0, sub, normal)\n"
            + special +
            "    return (mag | ((b & 0x80) << 24)).to(tl.float32, bitcast=True)\n")


HELPERS = {**{f"_f32_to_{f.name}": _encoder(f) for f in FORMATS.values()},
           **{f"_{f.name}_to_f32": _decoder(f) for f in FORMATS.values()}}


def from_float32(em, expr: str, dtype: torch.dtype) -> str:
    """float32 `expr` rounded to the float8 `dtype`."""
    f = FORMATS[dtype]
    if em.interpret or not f.saturates:
        em.needs_helpers.add(f"_f32_to_{f.name}")
        return f"_f32_to_{f.name}({expr})"
    x = em.fresh("f8_in")
    em.emit(f"{x} = {expr}")
    return f"tl.where(tl.abs({x}) > 464.0, float('nan'), {x}).to({f.tl_dtype})"  # torch CUDA: NaN past 464


def to_float32(em, expr: str, dtype: torch.dtype) -> str:
    """float8 `expr` (of `dtype`) as float32 (exact)."""
    f = FORMATS[dtype]
    if em.interpret:
        em.needs_helpers.add(f"_{f.name}_to_f32")
        return f"_{f.name}_to_f32({expr})"
    return f"{_operand(expr)}.to(tl.float32)"


def _operand(expr: str) -> str:
    return expr if expr.isidentifier() else f"({expr})"
