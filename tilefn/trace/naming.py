"""Names of torch functions as the user spelled them."""
from __future__ import annotations


def op_name(func) -> str:
    """`torch.add` -> "add"; a property's getter (Tensor.shape) -> the property's name."""
    name = getattr(func, "__name__", None) or str(func)
    if name == "__get__":  # a property such as Tensor.shape, reached through its getter
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    return name
