"""The device a Program runs on, and what it offers the code generator."""
from __future__ import annotations

import torch

from ..trace.ir import Program
from ..trace.types import HostType


def device_of(program: Program) -> torch.device:
    """The device of the program's tensors (CPU when it has none)."""
    for var in program.inputs:
        if isinstance(var.type, HostType):
            return torch.device(var.type.device)
    for eqn in program.eqns:
        for var in eqn.outputs:
            return torch.device(var.type.device)
    return torch.device("cpu")


def has_tma(program: Program) -> bool:
    """Whether the kernel's device has tensor descriptors: Hopper+ GPUs, and Triton's CPU interpreter
    (CPU tensors also stand for the GPU `compile_for_gpu` compiles for)."""
    device = device_of(program)
    if device.type != "cuda":
        return True
    return torch.cuda.get_device_capability(device)[0] >= 9
