"""Torch functions and methods on device values, by family: each registers its handlers (and
DeviceValue methods) into `proxies.DEVICE_OPS` when imported; importing this package loads them all."""
from . import (accumulate, activations, arrange, casts, creation, matmul, norms, numeric, pointwise,  # noqa: F401
               random_numbers, reductions, scans, sorting, views)
