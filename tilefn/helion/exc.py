"""The few `helion.exc` names Helion kernel files mention (as `ignore_warnings=[helion.exc.X]`)."""
from __future__ import annotations

from ..errors import TilefnError, TracingError  # noqa: F401 - errors tilefn raises for a kernel
from .config import ConfigError  # noqa: F401
from .settings import SettingsError  # noqa: F401


class BaseWarning(UserWarning):
    """Base of Helion's warnings; tilefn accepts them in `ignore_warnings` and never raises them."""


class TensorOperationInWrapper(BaseWarning):
    pass


class TensorOperationsInHostCall(BaseWarning):
    pass


class TiledReduction(BaseWarning):
    pass


class InternalError(TracingError):
    """Helion's name for a bad argument to a language function (an atomic's `sem`)."""


class AtomicOnDeviceTensor(TracingError):
    """An `hl.atomic_*` whose target is a value inside the loop, not a tensor in memory."""
