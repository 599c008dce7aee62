"""`Unmerged`: what a name holds after an `if` on a device value whose branches leave it unmergeable."""
from __future__ import annotations

from ..errors import TracingError


class Unmerged:
    """A placeholder that raises its reason (a TracingError at the user's line) wherever it is used."""

    def __init__(self, reason: str):
        object.__setattr__(self, "_reason", reason)

    def refuse(self, *args, **kwargs):
        raise TracingError(object.__getattribute__(self, "_reason"))

    def __getattr__(self, name):
        self.refuse()

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        next(a for a in (*args, *(kwargs or {}).values()) if isinstance(a, Unmerged)).refuse()

    def __repr__(self):
        return "Unmerged()"


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lt", "le",
              "gt", "ge", "eq", "ne", "getitem", "setitem", "bool", "index", "int", "float", "iter", "len", "call",
              "neg", "abs", "invert", "radd", "rsub", "rmul", "rtruediv", "rfloordiv", "rmod", "rpow", "rand", "ror"):
    setattr(Unmerged, f"__{_name}__", Unmerged.refuse)
