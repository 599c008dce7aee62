"""`Settings`: how a `helion.kernel` compiles, tunes and reports, fixed when the kernel is decorated.

Each setting is read from its Helion environment variable (`HELION_PRINT_OUTPUT_CODE=1`,
`HELION_PRINT_REPRO=1`, `HELION_FORCE_AUTOTUNE=1`, `HELION_AUTOTUNE_EFFORT=quick`,
`HELION_AUTOTUNE_LOG=/tmp/run`, `HELION_INTERPRET=1`, ...) when the decorator runs; arguments given
to the decorator override the environment. Settings are not tuned.

Differences from Helion: the default effort is "quick" (Helion's is "full"; tilefn's quick search
is meant to come within a few percent of full); `static_shapes=False` is accepted but tilefn
specialises every kernel on shapes anyway (a new shape compiles anew); settings that tune Helion's
own autotuner or code annotations are accepted and have no effect (a warning names them).
"""
from __future__ import annotations

import json
import os
import warnings

import attrs

EFFORTS = ("none", "quick", "full")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

# Helion's autotuner names -> tilefn.tune's searches
SEARCH_NAMES = {"PatternSearch": "pattern", "RandomSearch": "random", "DifferentialEvolutionSearch": "de",
                "LFBOPatternSearch": "default", "LFBOTreeSearch": "default", "FiniteSearch": "default"}

# Helion settings that tilefn accepts but that change nothing here (tuning internals, warning
# filters, code annotations): a Helion kernel file passing them still runs.
NO_EFFECT = frozenset({
    "ignore_warnings", "index_dtype", "dot_precision", "fast_math", "persistent_reserved_sms",
    "autotune_force_persistent", "autotune_log_level", "autotune_compile_timeout", "autotune_precompile",
    "autotune_precompile_jobs", "autotune_accuracy_check", "autotune_rebenchmark_threshold",
    "autotune_search_acf", "autotune_max_generations", "autotune_ignore_errors", "autotune_adaptive_timeout",
    "output_origin_lines", "allow_warp_specialize", "debug_dtype_asserts", "autotune_cache",
    "autotune_baseline_atol", "autotune_baseline_rtol", "autotune_best_available_max_configs",
    "autotune_best_available_max_cache_scan", "autotuner_fn", "autotune_benchmark_fn",
})
# Helion settings tilefn cannot honour: passing them (other than their default) is an error
UNSUPPORTED = {
    "backend": ("triton", "tilefn generates Triton only"),
    "autotune_baseline_fn": (None, "tilefn.tune checks candidates against the default config's output"),
}


class SettingsError(ValueError):
    """A setting or its environment variable has a value tilefn does not accept."""


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be one of {sorted(_TRUE | _FALSE)}, got {value!r}")


def _env_str(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _env_int(name: str, default: int) -> int:
    value = _env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {value!r}") from None


def _check_effort(value, source: str) -> str:
    if value == "auto":  # Helion picks an effort from the search space; tilefn's quick is its smallest search
        return "quick"
    if value not in EFFORTS:
        raise SettingsError(f"{source} must be one of {list(EFFORTS)}, got {value!r}")
    return value


def _overrides(value) -> tuple:
    return tuple(sorted(dict(value or {}).items(), key=lambda kv: kv[0]))


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@attrs.frozen
class Settings:
    """The settings of one `helion.kernel`; build with `Settings.build(**decorator_kwargs)`."""

    autotune_effort: str = "quick"
    static_shapes: bool = True
    print_output_code: bool = False
    print_repro: bool = False
    force_autotune: bool = False
    autotune_log: str | None = None
    autotune_random_seed: int = 0
    autotune_progress_bar: bool = True
    autotune_search: str = "default"
    autotune_config_overrides: tuple = attrs.field(default=(), converter=_overrides)
    ref_mode: str = "off"  # "eager": run tilefn.interpret (eager PyTorch, tile by tile) instead of Triton
    ignored: tuple = ()  # (name, value) of Helion settings accepted with no effect in tilefn

    @classmethod
    def from_env(cls) -> "Settings":
        """The settings the environment variables give (Helion's names)."""
        effort = _env_str("HELION_AUTOTUNE_EFFORT")
        effort = _check_effort(effort, "HELION_AUTOTUNE_EFFORT") if effort else "quick"
        if _env_bool("HELION_USE_DEFAULT_CONFIG", False):
            effort = "none"
        search = _env_str("HELION_AUTOTUNER") or "default"
        if search not in SEARCH_NAMES and search not in SEARCH_NAMES.values():
            raise SettingsError(f"HELION_AUTOTUNER must be one of {sorted(SEARCH_NAMES)}, got {search!r}")
        overrides = _env_str("HELION_AUTOTUNE_CONFIG_OVERRIDES")
        if overrides and not overrides.startswith("{") and os.path.exists(overrides):
            with open(overrides) as f:
                overrides = f.read()
        try:
            overrides = json.loads(overrides) if overrides else {}
        except json.JSONDecodeError:
            raise SettingsError("HELION_AUTOTUNE_CONFIG_OVERRIDES must be a JSON object") from None
        if not isinstance(overrides, dict):
            raise SettingsError("HELION_AUTOTUNE_CONFIG_OVERRIDES must be a JSON object")
        return cls(
            autotune_effort=effort,
            static_shapes=_env_bool("HELION_STATIC_SHAPES", True),
            print_output_code=_env_bool("HELION_PRINT_OUTPUT_CODE", False),
            print_repro=_env_bool("HELION_PRINT_REPRO", False),
            force_autotune=_env_bool("HELION_FORCE_AUTOTUNE", False),
            autotune_log=_env_str("HELION_AUTOTUNE_LOG"),
            autotune_random_seed=_env_int("HELION_AUTOTUNE_RANDOM_SEED", 0),
            autotune_progress_bar=_env_bool("HELION_AUTOTUNE_PROGRESS_BAR", True),
            autotune_search=SEARCH_NAMES.get(search, search),
            autotune_config_overrides={k: _freeze(v) for k, v in overrides.items()},
            ref_mode="eager" if _env_bool("HELION_INTERPRET", False) else "off",
        )

    @classmethod
    def build(cls, **kwargs) -> "Settings":
        """Environment variables first, then these decorator arguments on top."""
        base = cls.from_env()
        fields = {f.name for f in attrs.fields(cls)} - {"ignored"}
        changes, ignored = {}, []
        for name, value in kwargs.items():
            if name == "use_default_config":
                if value:
                    changes["autotune_effort"] = "none"
            elif name == "autotune_effort":
                changes[name] = _check_effort(value, "autotune_effort")
            elif name == "autotuner_fn" and value is not None:
                ignored.append((name, getattr(value, "__name__", repr(value))))
            elif name == "ref_mode":  # Helion's RefMode enum (or its name)
                mode = str(getattr(value, "name", value)).lower()
                if mode not in ("off", "eager"):
                    raise SettingsError(f"ref_mode must be 'off' or 'eager' (RefMode.OFF / RefMode.EAGER), "
                                        f"got {value!r}")
                changes[name] = mode
            elif name == "autotune_config_overrides":
                changes[name] = {k: _freeze(v) for k, v in dict(value or {}).items()}
            elif name in fields:
                changes[name] = value
            elif name in NO_EFFECT:
                ignored.append((name, repr(value)))
            elif name in UNSUPPORTED:
                default, why = UNSUPPORTED[name]
                if value is not None and value != default:
                    raise SettingsError(f"helion.kernel({name}={value!r}) is not supported by tilefn: {why}")
            else:
                import difflib

                known = sorted(fields | NO_EFFECT | set(UNSUPPORTED) | {"use_default_config"})
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise TypeError(f"helion.kernel() got an unknown setting {name!r}{hint}")
        if "autotune_search" in changes:
            search = changes["autotune_search"]
            changes["autotune_search"] = SEARCH_NAMES.get(search, search)
        settings = attrs.evolve(base, **changes, ignored=tuple(ignored))
        if settings.autotune_search not in set(SEARCH_NAMES.values()):
            raise SettingsError(f"autotune_search must be one of {sorted(set(SEARCH_NAMES.values()))}")
        return settings

    def warn_ignored(self, kernel_name: str) -> None:
        names = [n for n, _ in self.ignored if n != "ignore_warnings"]
        if names:
            warnings.warn(f"helion.kernel {kernel_name}: settings {names} have no effect in tilefn",
                          stacklevel=4)
