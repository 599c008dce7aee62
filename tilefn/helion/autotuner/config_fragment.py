"""Helion's search-space fragments for `hl.register_tunable(name, fragment)`.

A fragment gives a knob's valid values (`values()`) and its default; `hl.register_tunable`
registers them with tilefn's `register_tunable`, so `tfn.tune` searches them.
"""
from __future__ import annotations

import attrs

from ...tune.spec import pow2_range


@attrs.frozen
class PowerOfTwoFragment:
    low: int
    high: int
    default_val: int | None = None

    def default(self) -> int:
        return self.default_val if self.default_val is not None else self.low

    def values(self) -> tuple:
        return pow2_range(max(self.low, 1), self.high)


@attrs.frozen
class IntegerFragment:
    low: int
    high: int
    default_val: int | None = None

    def default(self) -> int:
        return self.default_val if self.default_val is not None else self.low

    def values(self) -> tuple:
        return tuple(range(self.low, self.high + 1))


@attrs.frozen
class EnumFragment:
    choices: tuple = attrs.field(converter=tuple)

    def default(self):
        return self.choices[0]

    def values(self) -> tuple:
        return self.choices


@attrs.frozen
class BooleanFragment:
    def default(self) -> bool:
        return False

    def values(self) -> tuple:
        return (False, True)


FRAGMENTS = (PowerOfTwoFragment, IntegerFragment, EnumFragment, BooleanFragment)
__all__ = ["PowerOfTwoFragment", "IntegerFragment", "EnumFragment", "BooleanFragment"]
