"""`helion.Config`: a `tfn.Config` built from Helion's keyword spelling, printed back in it."""
from __future__ import annotations

import difflib
import json
import os
import uuid
import warnings
from pathlib import Path

import attrs

from ..config import Config as TfnConfig
from ..errors import ConfigError  # a Config key or value tilefn does not accept (a ValueError)
from ..lower.access_forms import ATOMIC_INDEXING, INDEXING
from ..lower.config_check import PID_TYPES

# Helion keys that are tfn.Config fields of the same name
DIRECT = ("block_sizes", "loop_orders", "flatten_loops", "l2_groupings", "reduction_loops",
          "range_unroll_factors", "range_num_stages", "range_multi_buffers", "range_flattens",
          "range_warp_specializes", "static_ranges", "load_eviction_policies", "num_warps",
          "num_stages", "indexing", "atomic_indexing", "pid_type",
          "persistent_flatten", "persistent_warp_specialize")  # (tilefn's spelling of Helion's grid-loop range_*)
# Helion keys with no tilefn counterpart: accepted only at the value that means "off"
HELION_ONLY = {
    "grid_fissions": lambda v: not v or all(not any(f) for f in v),
    "num_sm_multiplier": lambda v: v in (None, 1),
    "maxnreg": lambda v: v is None,
    "advanced_controls_file": lambda v: not v,
    "epilogue_subtile": lambda v: v is None,
}
# Helion's shorthand: a singular key stands for a one-entry list of the plural (`block_size=64`)
SHORTHAND = {name[:-1]: name for name in ("block_sizes", "loop_orders", "reduction_loops", "l2_groupings",
                                          "flatten_loops", "range_unroll_factors", "range_warp_specializes",
                                          "range_num_stages", "range_multi_buffers", "range_flattens",
                                          "static_ranges")}
# knobs of Helion's other backends that mean nothing to Triton: dropped with one warning, as Helion's
# Triton backend drops them
IGNORED = ("num_threads",)
KNOWN = (*DIRECT, *HELION_ONLY, *SHORTHAND, *IGNORED, "tunables")
# Helion writes load eviction policies as "", "first", "last"; Triton (and tfn.Config) as "evict_*"
EVICTION = {"": "", "first": "evict_first", "last": "evict_last", "evict_first": "evict_first",
            "evict_last": "evict_last", "evict_normal": ""}
EVICTION_BACK = {"": "", "evict_first": "first", "evict_last": "last"}


def _flat(sizes):
    """Old Helion configs nest block sizes per loop (`[[64, 32], [16]]`); tilefn numbers them flat."""
    out = []
    for s in sizes or ():
        out.extend(_flat(s) if isinstance(s, (list, tuple)) else [s])
    return out


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _expand_shorthand(kwargs: dict) -> dict:
    """Singular keys as the one-entry lists of their plurals; both spellings of one key are an error."""
    out = dict(kwargs)
    for short, plural in SHORTHAND.items():
        if short in out:
            if plural in out:
                raise ConfigError(f"helion.Config: give {short} or {plural}, not both")
            out[plural] = [out.pop(short)]
    for key in IGNORED:
        if out.pop(key, None) is not None:
            warnings.warn(f"helion.Config({key}=...) has no meaning for Triton; tilefn ignores it", stacklevel=4)
    return out


def _translate(kwargs: dict) -> dict:
    kwargs = _expand_shorthand(kwargs)
    fields, tunables = {}, dict(kwargs.pop("tunables", None) or {})
    for key, value in kwargs.items():
        if key in DIRECT:
            if value is None:
                continue
            if key == "block_sizes":
                value = _flat(value)
            elif key == "loop_orders":
                value = [tuple(v) for v in value]
            elif key in ("indexing", "atomic_indexing"):
                forms = INDEXING if key == "indexing" else ATOMIC_INDEXING
                values = [value] if isinstance(value, str) else list(value)
                bad = [v for v in values if v not in forms]
                if bad:
                    raise ConfigError(f"{key} must be one of {list(forms)} (or a list of them), got {bad[0]!r}")
                value = value if isinstance(value, str) else tuple(value)
            elif key == "load_eviction_policies":
                bad = [v for v in value if v not in EVICTION]
                if bad:
                    raise ConfigError(f"load_eviction_policies entries are '', 'first' or 'last', got {bad[0]!r}")
                value = [EVICTION[v] for v in value]
            elif key == "pid_type" and value not in PID_TYPES:
                raise ConfigError(f"pid_type must be one of {list(PID_TYPES)}, got {value!r}")
            fields[key] = value
        elif key in HELION_ONLY:
            if not HELION_ONLY[key](value):
                raise ConfigError(f"helion.Config({key}={value!r}): tilefn does not implement Helion's "
                                  f"`{key}`; leave it out")
        else:
            close = difflib.get_close_matches(key, KNOWN, n=1, cutoff=0.75)
            if close:
                raise ConfigError(f"helion.Config got an unknown key {key!r}; did you mean {close[0]!r}?")
            if not key.isidentifier() or not isinstance(value, (bool, int, float, str)):
                raise ConfigError(f"helion.Config got an unknown key {key!r} (keys: {', '.join(KNOWN)}; "
                                  "a kernel's own knobs from hl.register_tunable take int/float/bool/str values)")
            tunables[key] = value  # checked against the kernel's hl.register_tunable names when it runs
    fields["tunables"] = tunables
    return fields


class Config(TfnConfig):
    """`helion.Config(block_sizes=[64, 64, 32], num_warps=4, ...)`: a tfn.Config with Helion's spelling.

    Keys are Helion's; ones tilefn lacks are refused unless they hold their "off" value, and a
    near-miss of a key name is an error. Any other key is a kernel's own knob, as in Helion: its
    value reaches `hl.register_tunable(name, ...)`, and a key no `register_tunable` claims is an
    error when the kernel runs.
    """

    __slots__ = ()

    def __init__(self, **kwargs):
        super().__init__(**_translate(dict(kwargs)))

    @classmethod
    def of(cls, config) -> "Config":
        """A helion.Config equal to `config` (a tfn.Config, a helion.Config or a dict of Helion keys)."""
        if isinstance(config, Config) or config is None:
            return config
        if isinstance(config, dict):
            return cls(**config)
        if isinstance(config, TfnConfig):
            return cls(**{f.name: getattr(config, f.name) for f in attrs.fields(TfnConfig)})
        raise TypeError(f"expected a helion.Config, tfn.Config or dict, got {type(config).__name__}")

    # equal to (and hashing as) the tfn.Config with the same fields
    def __eq__(self, other):
        if not isinstance(other, TfnConfig):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in attrs.fields(TfnConfig))

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = TfnConfig.__hash__

    # --- Helion's Config API: a mapping of its keys, JSON round trips ------------------------
    def to_dict(self) -> dict:
        """The non-default knobs, by Helion's key names (user tunables inline, as Helion writes them)."""
        default = TfnConfig()
        out = {}
        for field in attrs.fields(TfnConfig):
            value = getattr(self, field.name)
            if value == getattr(default, field.name):
                continue
            if field.name == "tunables":
                out.update(dict(value))
            elif field.name == "load_eviction_policies":
                out[field.name] = [EVICTION_BACK[v] for v in value]
            else:
                out[field.name] = _plain(value)
        return out

    @property
    def config(self) -> dict:
        """Helion's `config.config`: the set keys and their values (as `to_dict()`)."""
        return self.to_dict()

    def __getitem__(self, key):
        data = self.to_dict()
        if key in data:
            return data[key]
        if key in DIRECT:
            return _plain(getattr(self, key))
        raise KeyError(key)

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self):
        return self.to_dict().keys()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        return cls(**json.loads(text))

    @classmethod
    def from_dict(cls, data) -> "Config":
        return cls(**dict(data))

    def save(self, path) -> None:
        """Write the config as JSON (atomically: a temporary file renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".tmp.{uuid.uuid4()}"
        tmp.write_text(self.to_json())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> "Config":
        return cls.from_json(Path(path).read_text())

    def __repr__(self) -> str:
        return "helion.Config(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"

    __str__ = __repr__
