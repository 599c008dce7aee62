"""Triton, imported at the first lowering, launch or benchmark: the one door to it (its internals sit
behind `triton_compat`), so that `import tilefn` does not import Triton."""
from __future__ import annotations


def triton():
    """The `triton` package, with `triton.language` loaded."""
    import triton
    import triton.language  # noqa: F401

    return triton


def compat():
    """`tilefn.lower.triton_compat`: Triton's internals behind version checks (warns once if untested)."""
    from . import triton_compat as module

    return module


def launch():
    """`tilefn.lower.launch`: loading, compiling and launching generated Triton source."""
    from . import launch as module

    return module


def do_bench(fn, **options) -> float:
    """`triton.testing.do_bench(fn, **options)`: milliseconds per call of `fn` on the GPU."""
    from triton.testing import do_bench as bench

    return bench(fn, **options)
