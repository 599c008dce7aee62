"""A stand-in for the Helion helper module examples and tests query for hardware features:
`helion._compat` (tilefn.helion.runtime.settings answers `_get_backend`)."""
from __future__ import annotations

import types

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
