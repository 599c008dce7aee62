"""Automatic backward kernels: `vjp` transposes a traced Program (`program`, `kernel`, `memory`, the
`rules` table keyed by primitive); `autograd` registers the result as a kernel's torch backward."""
from .function import VjpFunction, autograd, vjp
from .split import vjp_split

__all__ = ["vjp", "vjp_split", "autograd", "VjpFunction"]
