"""The on-disk cache of tuned configs: one JSON file per (program, signature, device, versions)."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import torch

from ..config import Config
from ..lower import backend
from ..settings import Settings

log = logging.getLogger("tilefn.tune")
VERSION = "0.2.0"  # 0.2: list positions name knob sites of the canonical program (tilefn.lower.sites)


def cache_dir() -> Path:
    """Where tuned configs are kept: `Settings.cache_dir` / "tune"."""
    return Settings.from_env().cache_dir / "tune"


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def cache_key(program, device: torch.device) -> str:
    """A hash of the printed program (shapes, dtypes, strides, captured values) and the toolchain."""
    text = "\n".join([str(program), device_name(device), torch.__version__, backend.triton().__version__, VERSION])
    return hashlib.sha256(text.encode()).hexdigest()


def load(key: str) -> Config | None:
    path = cache_dir() / f"{key}.json"
    if not path.is_file():
        return None
    try:
        return Config.from_fields(json.loads(path.read_text())["config"])
    except Exception as exc:  # a corrupt or outdated entry is ignored, never fatal
        log.warning("ignoring corrupt tilefn tune cache entry %s: %s", path, exc)
        return None


def store(key: str, config: Config, seconds: float) -> None:
    path = cache_dir() / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump({"config": config.to_fields(), "seconds": seconds}, f)
    os.replace(tmp, path)
