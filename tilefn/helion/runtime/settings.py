"""`helion.runtime.settings`: `Settings`, `RefMode` and the backend query, under Helion's names."""
from __future__ import annotations

import enum

from ..settings import BACKENDS, Settings, SettingsError


class RefMode(enum.Enum):
    """Helion's reference modes: EAGER runs the kernel as eager PyTorch, tile by tile (tfn.interpret)."""

    OFF = "off"
    EAGER = "eager"


def _get_backend() -> str:
    """The code generator kernels use: tilefn generates Triton only."""
    return BACKENDS[0]


__all__ = ["Settings", "SettingsError", "RefMode"]
