"""`helion.autotuner`: the search-space fragments `hl.register_tunable` takes (`config_fragment`)."""
from __future__ import annotations

from . import config_fragment
from .config_fragment import BooleanFragment, EnumFragment, FRAGMENTS, IntegerFragment, PowerOfTwoFragment

__all__ = ["config_fragment", "PowerOfTwoFragment", "IntegerFragment", "EnumFragment", "BooleanFragment",
           "FRAGMENTS"]
