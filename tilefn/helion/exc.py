"""`helion.exc`: Helion's exception names for the errors tilefn raises, and its warning names.

Each Helion name is one of tilefn's own classes (tilefn/errors.py, the Helion front's policy
errors and config/settings errors), so `with assertRaises(helion.exc.X)` catches what tilefn raises
where Helion raises X. Helion names tilefn never raises are left out (an AttributeError names them).
"""
from __future__ import annotations

from .. import errors as _e
from ..errors import TracingError
from .config import ConfigError
from .policy import EmptyDeviceLoop, NoDeviceLoop
from .settings import SettingsError  # noqa: F401

TilefnError = _e.TilefnError
Base = BaseError = _e.TilefnError
InvalidConfig = ConfigError
ShapeMismatch = _e.ShapeError
RankMismatch = _e.RankMismatch
InvalidTileRange = _e.InvalidTileRange
FailedToUnpackTile = _e.TileUnpackError
TileOfTile = _e.TileBoundError
DotBatchDimensionMismatch = _e.DotBatchMismatch
StatementNotSupported = _e.UnsupportedStatement
NoDeviceLoopsInKernel = NoDeviceLoop
EmptyDeviceLoopAfterDCE = EmptyDeviceLoop
HostTensorDirectUsage = _e.HostTensorInExpression


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
