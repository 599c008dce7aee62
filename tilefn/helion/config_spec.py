"""Helion's `bound.config_spec` (and `bound.env`): a read-only view of tilefn.tune's ConfigSpec.

`default_config()` is the config a kernel runs untuned; `block_sizes` lists each tunable block's
size hint and searched range; `user_defined_tunables` gives each `hl.register_tunable` knob as a
fragment; any other Config list field (`range_num_stages`, `reduction_loops`, `indexing`, ...)
reads as the knobs tuning searches for it. Helion's own search heuristics (its min/max block
sizes) are Helion's; these are tilefn's.
"""
from __future__ import annotations

import attrs

from ..tune.spec import ConfigSpec, pow2_range
from .autotuner import BooleanFragment, EnumFragment, IntegerFragment, PowerOfTwoFragment
from .config import HELION_ONLY, IGNORED, Config


@attrs.frozen
class BlockSizeSpec:
    """One tunable block: its id, the extent it tiles, and the smallest and largest size searched."""

    block_id: int
    size_hint: int | None
    min_size: int
    max_size: int


def fragment_of(choices: tuple, default):
    """The fragment that offers exactly `choices` (as `hl.register_tunable` was given it)."""
    if set(choices) == {False, True} and all(isinstance(c, bool) for c in choices):
        return BooleanFragment()
    if all(isinstance(c, int) and not isinstance(c, bool) for c in choices):
        low, high = min(choices), max(choices)
        if low >= 1 and tuple(choices) == pow2_range(low, high):
            return PowerOfTwoFragment(low, high, default)
        if tuple(choices) == tuple(range(low, high + 1)):
            return IntegerFragment(low, high, default)
    return EnumFragment(choices)


class HelionConfigSpec:
    """`bound.config_spec`: what tuning searches for one kernel and argument signature."""

    def __init__(self, spec: ConfigSpec):
        self.spec = spec

    def default_config(self) -> Config:
        return Config.of(self.spec.default())

    def knobs(self, field: str) -> list:
        """The searched knobs of one Config field, in site order."""
        return [k for k in self.spec.knobs if k.field == field]

    @property
    def block_sizes(self) -> list[BlockSizeSpec]:
        extents = {b.id: b.extent for b in self.spec.program.blocks}
        return [BlockSizeSpec(k.index, extents.get(k.index), min(k.choices), max(k.choices))
                for k in self.knobs("block_sizes")]

    @property
    def user_defined_tunables(self) -> dict:
        defaults = dict(self.spec.base.tunables)
        return {k.index: fragment_of(k.choices, defaults.get(k.index)) for k in self.knobs("tunables")}

    def unsupported_config_keys(self, config) -> list[str]:
        """The keys of a config (a dict) that are Helion's but that tilefn does not act on."""
        return sorted(key for key in config if key in HELION_ONLY or key in IGNORED)

    def __getattr__(self, field):
        if field.startswith("_") or field not in attrs.fields_dict(Config):
            raise AttributeError(f"helion config_spec has no {field!r} in tilefn (it lists Config fields: "
                                 f"{sorted(attrs.fields_dict(Config))})")
        return self.knobs(field)


class BoundEnv:
    """`bound.env`: the two things Helion's compile environment is asked for by kernels' tests."""

    def __init__(self, config_spec: HelionConfigSpec):
        self.config_spec = config_spec
        self.block_sizes = config_spec.block_sizes
