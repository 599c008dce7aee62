"""`tilefn.helion`: Helion's spelling on top of tilefn.

A Helion kernel file runs on tilefn after changing its imports to

    import tilefn.helion as helion
    import tilefn.helion.language as hl

`helion.kernel` (settings, `.bind(args).to_triton_code()`, `.autotune(args)`), `helion.Config`
(Helion's keys) and `hl` (tilefn.lang under helion.language's names) are the front; tracing,
lowering and tuning are tilefn's (`tfn.jit`, `tfn.tune`).
"""
from __future__ import annotations

from . import autotuner, exc, language, runtime
from .config import Config, ConfigError
from .kernel import BoundKernel, Kernel, aot_kernel, kernel
from .runtime.settings import RefMode
from .settings import Settings, SettingsError

jit = kernel  # Helion's alias


def cdiv(a, b):
    """Ceiling division, `ceil(a / b)`, of ints (or of sizes and block sizes inside a kernel)."""
    return (a + b - 1) // b


def next_power_of_2(n: int) -> int:
    """The smallest power of two >= n (1 for n <= 1)."""
    return 1 << max(int(n) - 1, 0).bit_length()


__all__ = ["kernel", "jit", "aot_kernel", "Kernel", "BoundKernel", "Config", "ConfigError", "Settings",
           "SettingsError", "RefMode", "cdiv", "next_power_of_2", "language", "autotuner", "exc", "runtime"]
