"""`helion.runtime`: the device queries Helion kernels make on the host (`get_num_sm`), and the
`settings` / `config` / `kernel` modules under Helion's names."""
from __future__ import annotations

import torch

from ..config import Config
from ..kernel import Kernel, kernel
from . import settings


def get_num_sm(device: torch.device, *, reserved_sms: int = 0) -> int:
    """Streaming multiprocessors of a CUDA device less `reserved_sms` (the grid of a persistent
    kernel); 1 on the CPU, where Triton's interpreter runs one program at a time."""
    device = torch.device(device)
    if device.type == "cpu":
        return 1
    if device.type != "cuda":
        raise ValueError(f"helion.runtime.get_num_sm: tilefn runs on CUDA devices and the CPU, not {device}")
    count = torch.cuda.get_device_properties(device).multi_processor_count
    return max(1, count - reserved_sms)


def get_num_xcd(device: torch.device) -> int:
    """AMD's accelerator complexes per device: 1 on the devices tilefn runs on."""
    return 1


def set_triton_allocator() -> None:
    """Helion installs Triton's scratch allocator for tensor descriptors; tilefn's launcher does it itself."""


__all__ = ["Config", "Kernel", "kernel", "settings", "get_num_sm", "get_num_xcd", "set_triton_allocator"]
