"""`tilefn.helion`: Helion's spelling on top of tilefn.

A Helion kernel file runs on tilefn after changing its imports to

    import tilefn.helion as helion
    import tilefn.helion.language as hl

`helion.kernel` (settings, `.bind(args).to_triton_code()`, `.autotune(args)`), `helion.Config`
(Helion's keys) and `hl` (tilefn.lang under helion.language's names) are the front; tracing,
lowering and tuning are tilefn's (`tfn.jit`, `tfn.tune`).
"""
from __future__ import annotations

from . import autotuner, exc, language
from .config import Config, ConfigError
from .kernel import BoundKernel, Kernel, kernel
from .settings import Settings, SettingsError

__all__ = ["kernel", "Kernel", "BoundKernel", "Config", "ConfigError", "Settings", "SettingsError",
           "language", "autotuner", "exc"]
