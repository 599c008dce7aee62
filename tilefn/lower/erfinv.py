"""The lowering of torch.erfinv, which Triton lacks: Giles' single-precision approximation (two
polynomials in w = -log(1 - x^2)), refined by Newton steps on erf in float64; exact at |x| = 1."""
from __future__ import annotations

import torch

from .emit import Emitter

# Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011): highest degree first.
_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
            -0.00417768164, 0.246640727, 1.50140941)  # in w - 2.5, for w < 5
_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
         0.00943887047, 1.00167406, 2.83297682)  # in sqrt(w) - 3
_TWO_OVER_SQRT_PI = 1.1283791670955126


def _horner(coefficients, t: str) -> str:
    expr = repr(coefficients[0])
    for c in coefficients[1:]:
        expr = f"({expr} * {t} + {c!r})"
    return expr


def lower_erfinv(em: Emitter, eqn) -> None:
    (x,) = eqn.inputs
    dtype = eqn.outputs[0].type.dtype
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    y, w, t_central, t_tail, guess = (em.fresh(n) for n in ("erfinv_x", "erfinv_w", "erfinv_c", "erfinv_t", "erfinv"))
    em.emit(f"{y} = {em.converted(em(x), x.type.dtype, compute)}")
    em.emit(f"{w} = -tl.log((1.0 - {y}) * (1.0 + {y}))")
    em.emit(f"{t_central} = {w} - 2.5")
    em.emit(f"{t_tail} = tl.sqrt({w}) - 3.0")
    em.emit(f"{guess} = tl.where({w} < 5.0, {_horner(_CENTRAL, t_central)}, {_horner(_TAIL, t_tail)}) * {y}")
    if compute == torch.float64:  # each Newton step doubles the ~7 correct digits
        for _ in range(2):
            em.emit(f"{guess} = {guess} - (tl.erf({guess}) - {y}) / ({_TWO_OVER_SQRT_PI!r} * tl.exp(-{guess} * {guess}))")
    exact = f"tl.where(tl.abs({y}) == 1.0, {y} * float('inf'), tl.where(tl.abs({y}) > 1.0, float('nan'), {guess}))"
    em.assign(eqn.outputs[0], em.converted(exact, compute, dtype))
