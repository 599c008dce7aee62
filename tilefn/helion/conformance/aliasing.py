"""Makes `import helion` give tilefn.helion inside a conformance subprocess (`install`).

`helion`, `helion.language`, `helion.exc`, `helion.autotuner` and `helion.runtime` (with their
submodules in ALIASES) are copies of tilefn.helion's modules registered as packages,
`helion._testing` is `testing_shim`, `helion._compat` comes from `compat_shim`. Any other `helion.*` module (Helion's
internals: `helion._compiler...`, `helion.autotuner.base_search`...) imports as a placeholder whose
use raises `HelionInternal`, a unittest skip naming what was used.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import re
import sys
import types
from pathlib import Path

from . import compat_shim, testing_shim
from .outcomes import HelionInternal

ALIASES = {
    "helion": "tilefn.helion",
    "helion.language": "tilefn.helion.language",
    "helion.exc": "tilefn.helion.exc",
    "helion.autotuner": "tilefn.helion.autotuner",
    "helion.autotuner.config_fragment": "tilefn.helion.autotuner.config_fragment",
    "helion.runtime": "tilefn.helion.runtime",
    "helion.runtime.settings": "tilefn.helion.runtime.settings",
    "helion.runtime.config": "tilefn.helion.config",
    "helion.runtime.kernel": "tilefn.helion.kernel",
}


class Internal:
    """Stands for a name from a Helion internal module; using it raises HelionInternal."""

    def __init__(self, path: str):
        self._path = path

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Internal(f"{self._path}.{attr}")

    def _refuse(self, *args, **kwargs):
        raise HelionInternal(f"uses Helion internals ({self._path})")

    __call__ = __iter__ = __enter__ = __mro_entries__ = _refuse

    def __repr__(self):
        return f"<Helion internal {self._path}>"


class InternalModule(types.ModuleType):
    """A Helion module tilefn has no counterpart of: each attribute is an `Internal`."""

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Internal(f"{self.__name__}.{attr}")


class InternalFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds every `helion.*` module not registered by `install` as an InternalModule package."""

    def find_spec(self, name, path, target=None):
        if name.startswith("helion.") and name not in sys.modules:
            return importlib.util.spec_from_loader(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = InternalModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def missing_exception(module: types.ModuleType, name: str) -> type:
    """A Helion exception class tilefn does not define (tilefn raises its own errors instead), made
    so that `pytest.raises(helion.exc.X)` runs and fails on the error tilefn raises."""
    if not re.fullmatch(r"[A-Z]\w*", name):
        raise AttributeError(f"module 'helion.exc' has no attribute {name!r}")
    cls = type(name, (Exception,), {"__module__": "helion.exc", "__doc__": "Not defined by tilefn.helion."})
    setattr(module, name, cls)
    return cls


def alias_module(name: str, source: types.ModuleType) -> types.ModuleType:
    """A package named `name` holding `source`'s names (its submodules resolve through the finder)."""
    module = types.ModuleType(name, source.__doc__)
    module.__dict__.update({k: v for k, v in vars(source).items() if not k.startswith("__")})
    module.__path__ = []
    if name == "helion.exc":
        module.__getattr__ = lambda attr: missing_exception(module, attr)
    return module


def install(helion_root: Path) -> None:
    """Registers the aliases and shims in sys.modules; `helion_root` is the Helion checkout."""
    modules = {name: alias_module(name, importlib.import_module(src)) for name, src in ALIASES.items()}
    modules["helion._testing"] = testing_shim
    modules["helion._compat"] = compat_shim.compat_module()
    for name, module in modules.items():
        sys.modules[name] = module
    for name, module in modules.items():
        if "." in name:
            parent, _, child = name.rpartition(".")
            setattr(modules[parent], child, module)
    testing_shim.configure(helion_root)
    sys.meta_path.insert(0, InternalFinder())
