"""The on-disk cache of tuned configs: one JSON file per (program, signature, device, versions)."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable

import torch

from .. import disk_cache
from ..config import Config
from ..errors import TilefnError
from ..lower import backend
from ..settings import Settings

log = logging.getLogger("tilefn.tune")
VERSION = "0.2.0"  # 0.2: list positions name knob sites of the canonical program (tilefn.lower.sites)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def cache_key(program, device: torch.device) -> str:
    """A hash of the printed program (shapes, dtypes, strides, captured values) and the toolchain."""
    text = "\n".join([str(program), device_name(device), torch.__version__, backend.triton().__version__, VERSION])
    return hashlib.sha256(text.encode()).hexdigest()


def _where(key: str) -> tuple[Path, str]:
    """The cache root and the entry's file under it."""
    return Settings.from_env().cache_dir, f"tune/{key}.json"


def load(key: str, check: Callable[[Config], object] = lambda config: None) -> Config | None:
    """The Config stored under `key`, or None: when there is none, it cannot be read (`disk_cache`
    warns), it is corrupt, or `check(config)` raises a TilefnError (it no longer fits the kernel);
    the last two warn here, and the search that follows overwrites the entry."""
    root, relative = _where(key)
    text = disk_cache.read(root, relative)
    if text is None:
        return None
    try:
        config = Config.from_fields(json.loads(text)["config"])
    except Exception as exc:  # a corrupt or outdated entry is ignored, never fatal
        log.warning("ignoring corrupt tilefn tune cache entry %s: %s", root / relative, exc)
        return None
    try:
        check(config)
    except TilefnError as exc:
        log.warning("ignoring tilefn tune cache entry %s, its config no longer fits the kernel: %s",
                    root / relative, str(exc).splitlines()[0])
        return None
    return config


def store(key: str, config: Config, seconds: float, bucket: str | None = None) -> None:
    """Store `config` under `key` (where the cache cannot be written, `disk_cache` warns once and nothing is
    kept); `bucket`: the size bucket a dynamic kernel's config serves (`table.signature_text`), recorded
    beside it (the key already holds it: the printed program's block extents are the bucket's)."""
    entry = {"config": config.to_fields(), "seconds": seconds}
    if bucket is not None:
        entry["bucket"] = bucket
    disk_cache.write(*_where(key), json.dumps(entry))
