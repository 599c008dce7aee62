"""A Config checked against a Program's knob sites at the boundary, before any code is written.

Each problem is a ConfigError naming the field, the entry and the site it configures (with the
user's line): an unknown enum value, a list longer than the kernel has sites for it, an entry of
the wrong type, a loop order that is no permutation, `static_ranges` on a loop that cannot take it.
"""
from __future__ import annotations

from ..config import Config
from ..errors import ConfigError
from .access_forms import ATOMIC_INDEXING, INDEXING
from .sites import FIELD_KINDS, KIND_NAMES, Site, Sites

PERSISTENT = ("persistent_blocked", "persistent_interleaved")
PID_TYPES = ("flat", "xyz", *PERSISTENT)
PERSISTENT_OPTIONS = ("persistent_flatten", "persistent_warp_specialize")
EVICTION_POLICIES = ("", "evict_first", "evict_last")
RANGE_OPTIONS = ("range_unroll_factors", "range_num_stages", "range_multi_buffers", "range_flattens",
                 "range_warp_specializes")


def _is_int(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_pow2(value) -> bool:
    return _is_int(value, 1) and value & (value - 1) == 0


def _is_bool(value) -> bool:
    return isinstance(value, bool)


def _const(text: str):
    return lambda site: text


ENTRY_RULES = {  # field -> (whether a set entry fits its site, what an entry must be there)
    "indexing": (lambda site, v: v in INDEXING, _const(f"one of {', '.join(map(repr, INDEXING))}")),
    "atomic_indexing": (lambda site, v: v in ATOMIC_INDEXING,
                        _const(f"one of {', '.join(map(repr, ATOMIC_INDEXING))}")),
    "load_eviction_policies": (lambda site, v: v in EVICTION_POLICIES,
                               _const(f"one of {', '.join(map(repr, EVICTION_POLICIES))}")),
    "loop_orders": (lambda site, v: isinstance(v, (tuple, list)) and sorted(v) == list(range(site.facts["dims"])),
                    lambda site: f"a permutation of {list(range(site.facts['dims']))}"),
    "l2_groupings": (lambda site, v: _is_int(v, 1), _const("an int >= 1 (1 = off)")),
    "flatten_loops": (lambda site, v: v is False,
                      _const("False: tilefn does not flatten loops yet (every top-level loop already runs on "
                             "one flat program id; use loop_orders / l2_groupings)")),
    "range_unroll_factors": (lambda site, v: _is_int(v, 0), _const("an int >= 0 (0 = unset)")),
    "range_num_stages": (lambda site, v: _is_int(v, 0), _const("an int >= 0 (0 = unset)")),
    "range_multi_buffers": (lambda site, v: _is_bool(v), _const("a bool")),
    "range_flattens": (lambda site, v: _is_bool(v), _const("a bool")),
    "range_warp_specializes": (lambda site, v: _is_bool(v), _const("a bool")),
    "static_ranges": (lambda site, v: _is_bool(v) and (not v or site.facts["static"]),
                      lambda site: "a bool; True needs a loop with static int bounds" + (
                          "" if site.facts["static"] else ", and this loop's begin/end depend on runtime values")),
    "reduction_loops": (lambda site, v: _is_pow2(v), _const("a power of two (the chunk size) or None (the whole row)")),
}


def _field_error(field: str, index: int, value, site: Site, problem: str) -> ConfigError:
    return ConfigError(f"Config {field}[{index}]={value!r} ({site.describe()}): {problem}", source=site.source)


def _check_length(field: str, values: tuple, sites: tuple, name: str) -> None:
    if len(values) > len(sites):
        kinds = " and ".join(KIND_NAMES[k] + "s" for k in FIELD_KINDS[field])
        raise ConfigError(f"Config {field} has {len(values)} entries but {name} has {len(sites)} {kinds} "
                          f"({field}[{len(sites)}] names none): give one entry per site or fewer", source=None)


def _check_static_range(config: Config, sites: Sites) -> None:
    """`static_ranges[i]=True` takes no range_* options for the same loop (tl.static_range has none)."""
    for site in sites.of_field("static_ranges"):
        k = site.positions["static_ranges"]
        if k < len(config.static_ranges) and config.static_ranges[k]:
            clash = [f for f in RANGE_OPTIONS if _option_set(f, getattr(config, f)[k] if k < len(getattr(config, f)) else None)]
            if clash:
                raise _field_error("static_ranges", k, True, site,
                                   f"tl.static_range takes no range_* options, but {', '.join(clash)} "
                                   "set some for the same loop")


def _option_set(field: str, value) -> bool:
    """Whether a range_* entry asks for an option (range_multi_buffers=False asks for one too)."""
    return value is not None if field == "range_multi_buffers" else bool(value)


def check_config(config: Config, sites: Sites, name: str) -> None:
    """Raise a ConfigError for the first entry of `config` the kernel `name`'s sites cannot take."""
    if config.pid_type not in PID_TYPES:
        raise ConfigError(f"Config pid_type={config.pid_type!r}: expected one of {', '.join(map(repr, PID_TYPES))}",
                          source=None)
    if isinstance(config.indexing, str) and config.indexing not in INDEXING:
        raise ConfigError(f"Config indexing={config.indexing!r}: expected one of {', '.join(map(repr, INDEXING))} "
                          "(or a list of them, one per load and store)", source=None)
    if isinstance(config.atomic_indexing, str) and config.atomic_indexing not in ATOMIC_INDEXING:
        raise ConfigError(f"Config atomic_indexing={config.atomic_indexing!r}: expected one of "
                          f"{', '.join(map(repr, ATOMIC_INDEXING))} (or a list of them, one per atomic)", source=None)
    for field, (fits, expected) in ENTRY_RULES.items():
        values = getattr(config, field)
        if isinstance(values, str):
            continue
        field_sites = sites.of_field(field)
        _check_length(field, values, field_sites, name)
        for index, (value, site) in enumerate(zip(values, field_sites)):
            if value is not None and not fits(site, value):
                raise _field_error(field, index, value, site, f"expected {expected(site)}")
    _check_static_range(config, sites)
    _check_persistent_options(config)


def _check_persistent_options(config: Config) -> None:
    """`persistent_flatten` / `persistent_warp_specialize` are bools, set only with a persistent pid_type."""
    for field in PERSISTENT_OPTIONS:
        value = getattr(config, field)
        if not _is_bool(value):
            raise ConfigError(f"Config {field}={value!r}: expected a bool", source=None)
        if value and config.pid_type not in PERSISTENT:
            raise ConfigError(f"Config {field}=True configures the persistent loop over tiles, but pid_type="
                              f"{config.pid_type!r} launches one program per tile and has none: use pid_type "
                              f"{' or '.join(map(repr, PERSISTENT))}", source=None)
