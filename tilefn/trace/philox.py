"""Counter-based random numbers in eager PyTorch: Philox-4x32 with 10 rounds, bit for bit as Triton's
`tl.randint` / `tl.rand` / `tl.randn` compute them (the meaning of the random primitives).

32-bit words are held in int64 tensors in [0, 2**32); a product of two words is formed from 16-bit
halves so that nothing overflows 64 bits.
"""
from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
ROUNDS = 10
KEY_A, KEY_B = 0x9E3779B9, 0xBB67AE85  # the key schedule's increments (Weyl sequence)
ROUND_A, ROUND_B = 0xD2511F53, 0xCD9E8D57  # the round multipliers
UNIFORM_SCALE = 4.6566127342e-10  # Triton's: the largest float32 with (2**31 - 1) * scale < 1
BOX_MULLER_MIN = 1.0e-7
TWO_PI = 6.283185307179586


def _mul_wide(multiplier: int, word: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The high and low 32-bit words of `multiplier * word` (both 32-bit unsigned)."""
    low_half, high_half = word & 0xFFFF, word >> 16
    by_low, by_high = multiplier * low_half, multiplier * high_half  # each < 2**48
    low = (by_low + ((by_high & 0xFFFF) << 16)) & MASK32
    high = (by_high + (by_low >> 16)) >> 16
    return high, low


def rounds(counter: tuple, key: tuple) -> tuple[torch.Tensor, ...]:
    """Philox-4x32-10 of four 32-bit counter words under two 32-bit key words (int64 tensors)."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(ROUNDS):
        high_b, low_b = _mul_wide(ROUND_B, c2)
        high_a, low_a = _mul_wide(ROUND_A, c0)
        c0, c1, c2, c3 = high_b ^ c1 ^ k0, low_b, high_a ^ c3 ^ k1, low_a
        k0, k1 = (k0 + KEY_A) & MASK32, (k1 + KEY_B) & MASK32
    return c0, c1, c2, c3


def philox(seed: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The four words Philox makes from the key `seed` (int64: its low and high words) and the
    counters `offsets`: the low word of each offset, and its high word when offsets are 64-bit
    (Triton's `randint4x`), the other two zero."""
    counter = offsets.to(torch.int64)
    c0 = counter & MASK32
    c1 = (counter >> 32) & MASK32 if offsets.dtype == torch.int64 else torch.zeros_like(c0)
    key = seed.to(device=counter.device, dtype=torch.int64)
    return rounds((c0, c1, torch.zeros_like(c0), torch.zeros_like(c0)), (key & MASK32, (key >> 32) & MASK32))


def _signed(word: torch.Tensor) -> torch.Tensor:
    """A 32-bit word read as int32 (in int64)."""
    return torch.where(word >= 2**31, word - 2**32, word)


def uniform(word: torch.Tensor) -> torch.Tensor:
    """float32 in [0, 1) from a 32-bit word, as Triton's `uint_to_uniform_float`."""
    signed = _signed(word)
    magnitude = torch.where(signed < 0, -signed - 1, signed)
    return magnitude.to(torch.float32) * torch.tensor(UNIFORM_SCALE, dtype=torch.float32, device=word.device)


def rand(seed, offsets) -> torch.Tensor:
    """Uniform float32 in [0, 1) per offset (`tl.rand`)."""
    return uniform(philox(seed, offsets)[0])


def rand4x(seed, offsets) -> tuple[torch.Tensor, ...]:
    """Four independent uniform float32 in [0, 1) per offset, one per Philox word (`tl.rand4x`)."""
    return tuple(map(uniform, philox(seed, offsets)))


def randn(seed, offsets) -> torch.Tensor:
    """Standard normal float32 per offset (`tl.randn`: Box-Muller on the first two words). log, sqrt
    and cos are rounded once from float64: the device's own may differ in the last bits."""
    c0, c1, _, _ = philox(seed, offsets)
    u1 = torch.clamp_min(uniform(c0), BOX_MULLER_MIN)
    angle = torch.tensor(TWO_PI, dtype=torch.float32, device=u1.device) * uniform(c1)
    log = torch.log(u1.double()).float()
    radius = torch.sqrt((-2.0 * log).double()).float()
    return radius * torch.cos(angle.double()).float()


def randint(seed, offsets, *, low: int, high: int) -> torch.Tensor:
    """int32 in [low, high) per offset: `low + |first word as int32| % (high - low)` (Helion's rule)."""
    magnitude = _signed(philox(seed, offsets)[0]).abs()
    return (low + magnitude % (high - low)).to(torch.int32)
