"""Stand-ins for the two Helion helper modules examples and tests query for the backend:
`helion._compat` (hardware feature probes) and `helion.runtime.settings` (`_get_backend`)."""
from __future__ import annotations

import types

BACKEND = "triton"


def _get_backend() -> str:
    """tilefn generates Triton only."""
    return BACKEND


def _supports_tensor_descriptor() -> bool:
    """Helion's probe for TMA hardware; the CPU interpreter has none."""
    return False


def supports_tensor_descriptor() -> bool:
    return _supports_tensor_descriptor()


def use_tileir_tunables() -> bool:
    return False


def get_tensor_descriptor_fn_name() -> str:
    return "tl.make_tensor_descriptor"


def min_dot_size(device=None, lhs=None, rhs=None) -> tuple[int, int, int]:
    """Triton's smallest tl.dot tile (m, n, k)."""
    return (16, 16, 16)


def compat_module() -> types.ModuleType:
    module = types.ModuleType("helion._compat", "tilefn conformance stand-in for helion._compat")
    for fn in (_supports_tensor_descriptor, supports_tensor_descriptor, use_tileir_tunables,
               get_tensor_descriptor_fn_name, min_dot_size):
        setattr(module, fn.__name__, fn)
    return module


def settings_module(settings_cls) -> types.ModuleType:
    """`helion.runtime.settings`: `Settings` (tilefn.helion's) and `_get_backend`."""
    module = types.ModuleType("helion.runtime.settings", "tilefn conformance stand-in")
    module.Settings = settings_cls
    module._get_backend = _get_backend
    return module
