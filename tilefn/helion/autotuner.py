"""Helion's search-space fragments for `hl.register_tunable(name, fragment)`.

A fragment gives a knob's valid values and its default. tilefn reads the knob's value from the
Config (`helion.Config(name=value)`) or uses the default; tilefn.tune does not search these knobs.
"""
from __future__ import annotations

import attrs


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@attrs.frozen
class PowerOfTwoFragment:
    low: int
    high: int
    default_val: int | None = None

    def default(self) -> int:
        return self.default_val if self.default_val is not None else self.low

    def valid(self, value) -> bool:
        return _is_int(value) and self.low <= value <= self.high and value & (value - 1) == 0

    def describe(self) -> str:
        return f"a power of two in [{self.low}, {self.high}]"


@attrs.frozen
class IntegerFragment:
    low: int
    high: int
    default_val: int | None = None

    def default(self) -> int:
        return self.default_val if self.default_val is not None else self.low

    def valid(self, value) -> bool:
        return _is_int(value) and self.low <= value <= self.high

    def describe(self) -> str:
        return f"an int in [{self.low}, {self.high}]"


@attrs.frozen
class EnumFragment:
    choices: tuple = attrs.field(converter=tuple)

    def default(self):
        return self.choices[0]

    def valid(self, value) -> bool:
        return value in self.choices

    def describe(self) -> str:
        return f"one of {list(self.choices)}"


@attrs.frozen
class BooleanFragment:
    def default(self) -> bool:
        return False

    def valid(self, value) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "True or False"


FRAGMENTS = (PowerOfTwoFragment, IntegerFragment, EnumFragment, BooleanFragment)
__all__ = ["PowerOfTwoFragment", "IntegerFragment", "EnumFragment", "BooleanFragment"]
