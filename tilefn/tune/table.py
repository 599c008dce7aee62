"""Shipped config tables: tuned configs a library writes once and its users load, never tuning.

A table maps a device name (`torch.cuda.get_device_name`, or "cpu") to argument signatures
(`signature_text`: dtypes, shapes, strides and static values, readable and stable across
processes and versions) to Config fields (`Config.to_fields`). It is plain JSON.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..config import Config
from ..trace.dynamic import layout_class
from ..trace.sizes import bucket


def signature_text(args, dynamic: bool = False) -> str:
    """`bf16[4096, 4096]/(4096, 1), float`: what a tuned config is specialised on, as text (a float by
    type). Of a dynamic (static_shapes=False) kernel, each size's bucket and the layout class:
    `bf16[<=4096, <=64]/contiguous`."""
    parts = []
    for arg in args:
        if isinstance(arg, torch.Tensor) and dynamic:
            dtype = str(arg.dtype).removeprefix("torch.")
            parts.append(f"{dtype}[{', '.join(f'<={bucket(s)}' for s in arg.shape)}]/{layout_class(arg)}")
        elif isinstance(arg, torch.Tensor):
            dtype = str(arg.dtype).removeprefix("torch.")
            parts.append(f"{dtype}{list(arg.shape)}/{tuple(arg.stride())}")
        elif isinstance(arg, float):  # a runtime value: one config serves them all
            parts.append("float")
        else:
            parts.append(repr(arg))
    return ", ".join(parts)


def read(table) -> dict:
    """A table from a mapping or a path to its JSON file."""
    if table is None:
        return {}
    if isinstance(table, (str, Path)):
        return json.loads(Path(table).read_text())
    return dict(table)


def lookup(table: dict, device: str, signature: str) -> Config | None:
    """The shipped Config for this signature (`signature_text`) on this device, if the table has one."""
    fields = table.get(device, {}).get(signature)
    return Config.from_fields(fields) if fields is not None else None


def write(table: dict, path) -> None:
    """Save a table as JSON (sorted keys, so that shipped files diff well)."""
    Path(path).write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
