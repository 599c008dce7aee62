"""A tuning's arguments on each device it times candidates on: the torch side of `tilefn.tune.devices`.

`Replica` holds one device's copy of the arguments (made once per tuning), a saved copy of every
tensor a kernel could write (put back before each run) and the trusted outputs on that device.
Copies keep each tensor's storage offset and strides, and arguments sharing a storage share it in
the copy too. Only arguments whose tensors sit in tuples, lists and dicts are copied; a kernel with
tensors elsewhere (captured globals, closures of function arguments) is timed on its own device.
"""
from __future__ import annotations

import contextlib

import attrs
import torch

from ..settings import Settings
from ..trace.arguments import tensor_leaves
from ..trace.dynamic import expanded_axes
from ..trace.ir import Program
from .devices import parse_devices

MOVABLE_STEPS = ("item", "key")  # argument paths a copy rebuilds: tuple and list items, dict values


@attrs.frozen(eq=False)
class Replica:
    """One device's arguments for a tuning; `inputs` are every tensor in them, `saved` their values
    (compared by identity: the home replica is the one the Benchmarker made first)."""

    device: torch.device
    args: tuple
    inputs: list
    saved: list
    expected: list | None = None  # the trusted outputs then inputs, as `Benchmarker._observed` lists them

    @classmethod
    def of(cls, args: tuple, expected: list | None = None) -> "Replica":
        inputs = [t for a in args for _, _, t in tensor_leaves(a, "arg")]
        device = next((t.device for t in inputs if t.is_cuda), inputs[0].device if inputs else torch.device("cpu"))
        return cls(device, args, inputs, [None if expanded_axes(t) else t.clone() for t in inputs], expected)

    def restore(self) -> None:
        """Put the inputs back as they were when the replica was made (an expanded one no kernel writes:
        `lower.aliasing` refuses it, and torch refuses to copy into it)."""
        for tensor, saved in zip(self.inputs, self.saved):
            if saved is not None:
                tensor.copy_(saved)

    def on(self, device: torch.device) -> "Replica":
        """A copy on `device` (its storages copied once each, views rebuilt on them)."""
        storages: dict = {}
        args = tuple(_copied(a, self.device, device, storages) for a in self.args)
        moved = self.expected and [t.to(device, copy=True) if t.device == self.device else t for t in self.expected]
        return attrs.evolve(Replica.of(args), device=device, expected=moved)


def _copied(value, home: torch.device, device: torch.device, storages: dict):
    """`value` with its tensors on `home` copied to `device` (others, e.g. host tensors a kernel reads, stay)."""
    if isinstance(value, torch.Tensor) and value.device == home:
        storage = value.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key not in storages:
            raw = torch.empty(0, dtype=torch.uint8, device=value.device).set_(storage)
            storages[key] = raw.to(device, copy=True).untyped_storage()
        view = torch.empty(0, dtype=value.dtype, device=device)
        view.set_(storages[key], value.storage_offset(), value.shape, value.stride())
        return view.requires_grad_() if value.requires_grad else view
    if isinstance(value, (tuple, list)):
        return type(value)(_copied(v, home, device, storages) for v in value)
    if isinstance(value, dict):
        return {k: _copied(v, home, device, storages) for k, v in value.items()}
    return value


def movable(program: Program) -> bool:
    """Whether copies of the arguments are all a run of `program` reads: its tensors are arguments in
    tuples, lists and dicts (not captured, not in a function's closure)."""
    steps = (step[0] for path in program.input_paths for step in path[1:])
    return not program.consts and not program.captured and all(kind in MOVABLE_STEPS for kind in steps)


def tune_devices(home: torch.device) -> list[torch.device]:
    """The devices to time candidates on: CUDA devices (`TILEFN_TUNE_DEVICES`, default all visible),
    the home device first when among them; only `home` itself for other device types."""
    if home.type != "cuda":
        return [home]
    indices = parse_devices(Settings.from_env().tune_devices, torch.cuda.device_count())
    home_index = home.index if home.index is not None else torch.cuda.current_device()
    ordered = sorted(indices, key=lambda i: i != home_index)
    return [torch.device("cuda", i) for i in ordered]


def on_device(device: torch.device):
    """The context a run on `device` needs: its CUDA device current in this thread (the CPU
    interpreter needs none: its runs take `triton_compat`'s lock, one at a time)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
