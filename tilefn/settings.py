"""`Settings`: tilefn's own knobs (printing, caches, workers), read from TILEFN_* variables in one place.

    TILEFN_PRINT_OUTPUT_CODE=1   print each lowering's generated source to stderr
    TILEFN_DUMP_PASSES=1         print the program after each rewrite pass
    TILEFN_CACHE_DIR=path        where generated sources (src/) and tuned configs (tune/) are kept
                                 (default ~/.cache/tilefn; one that cannot be written is done
                                 without, with one warning: tilefn.disk_cache)
    TILEFN_COMPILE_WORKERS=n     most worker processes compiling tuning candidates (default min(8, cpus))
    TILEFN_TUNE_DEVICES=0,1      the CUDA devices tuning times candidates on (default: all visible;
                                 parsed by tilefn.tune.devices)

`Settings.from_env(**overrides)` reads the environment when it is called (a lowering or tuning
makes its settings then, so the environment at that moment counts); an override that is not None
(a decorator argument, e.g. `tfn.jit(fn, print_output_code=True)`) wins over the variable.
"""
from __future__ import annotations

import os
from pathlib import Path

import attrs


def _default_workers() -> int:
    return min(8, os.cpu_count() or 1)


@attrs.frozen
class Settings:
    """tilefn's knobs; build with `Settings.from_env(**overrides)`."""

    print_output_code: bool = False
    dump_passes: bool = False
    cache_dir: Path = attrs.field(factory=lambda: Path.home() / ".cache" / "tilefn", converter=Path)
    compile_workers: int = attrs.field(factory=_default_workers, converter=lambda n: max(1, int(n)))
    tune_devices: str = ""  # TILEFN_TUNE_DEVICES as given ("": every visible device)

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """The TILEFN_* environment variables as they are now, then the overrides that are not None."""
        env = os.environ
        fields = {}
        if "TILEFN_PRINT_OUTPUT_CODE" in env:
            fields["print_output_code"] = env["TILEFN_PRINT_OUTPUT_CODE"] == "1"
        if "TILEFN_DUMP_PASSES" in env:
            fields["dump_passes"] = env["TILEFN_DUMP_PASSES"] == "1"
        if env.get("TILEFN_CACHE_DIR"):
            fields["cache_dir"] = env["TILEFN_CACHE_DIR"]
        if "TILEFN_COMPILE_WORKERS" in env:
            fields["compile_workers"] = env["TILEFN_COMPILE_WORKERS"]
        if "TILEFN_TUNE_DEVICES" in env:
            fields["tune_devices"] = env["TILEFN_TUNE_DEVICES"]
        unknown = overrides.keys() - {f.name for f in attrs.fields(cls)}
        if unknown:
            raise TypeError(f"Settings has no fields {sorted(unknown)}")
        return cls(**{**fields, **{k: v for k, v in overrides.items() if v is not None}})
