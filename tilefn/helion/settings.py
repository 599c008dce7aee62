"""`Settings`: how a `helion.kernel` compiles, tunes and reports.

Each setting is read from its Helion environment variable (`HELION_PRINT_OUTPUT_CODE=1`,
`HELION_PRINT_REPRO=1`, `HELION_FORCE_AUTOTUNE=1`, `HELION_AUTOTUNE_EFFORT=quick`,
`HELION_AUTOTUNE_LOG=/tmp/run`, `HELION_INTERPRET=1`, `TRITON_F32_DEFAULT=ieee`, ...) when the
decorator runs; arguments given to the decorator override the environment. A `Settings` is a
value: `kernel.settings.x = v` (as in Helion) makes the kernel a new one with `with_(x=v)`.

Differences from Helion: the default effort is "quick" (Helion's is "full"; tilefn's quick search
is meant to come within a few percent of full); `static_shapes=False` is tilefn's own
(`tfn.jit(static_shapes=False)`: symbolic sizes, one compile for every size; tuned configs per size
bucket); settings that tune Helion's own autotuner or code annotations are accepted and have no
effect (one warning names them).
"""
from __future__ import annotations

import difflib
import json
import os
import warnings

import attrs

from ..trace.ops.matmul import DOT_PRECISIONS

EFFORTS = ("none", "quick", "full")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

# Helion's autotuner names -> tilefn.tune's searches
SEARCH_NAMES = {"PatternSearch": "pattern", "RandomSearch": "random", "DifferentialEvolutionSearch": "de",
                "LFBOPatternSearch": "default", "LFBOTreeSearch": "default", "FiniteSearch": "default"}

# Helion settings that tilefn accepts but that change nothing here (tuning internals, code
# annotations): a Helion kernel file passing or assigning them still runs, with one warning.
NO_EFFECT = frozenset({
    "index_dtype", "fast_math", "persistent_reserved_sms", "distributed",
    "autotune_force_persistent", "autotune_log_level", "autotune_log_details", "autotune_compile_timeout",
    "autotune_benchmark_subprocess", "autotune_benchmark_timeout", "autotune_precompile",
    "autotune_precompile_jobs", "autotune_best_of_k", "autotune_accuracy_check",
    "autotune_rebenchmark_threshold", "autotune_suspicious_rebenchmark_ratio", "autotune_search_acf",
    "autotune_max_generations", "autotune_budget_seconds", "autotune_ignore_errors",
    "autotune_adaptive_timeout", "output_origin_lines", "autotune_seed_configs",
    "disable_autotuner_heuristics", "allow_warp_specialize", "debug_dtype_asserts", "autotune_cache",
    "autotuner_fn", "autotune_baseline_atol", "autotune_baseline_rtol",
    "autotune_baseline_accuracy_check_fn", "autotune_benchmark_fn", "autotune_best_available_max_configs",
    "autotune_best_available_max_cache_scan", "autotune_initial_population_strategy",
    "torch_compile_fusion", "autotune_with_torch_compile_fusion", "autotune_config_filter",
    "triton_do_not_specialize", "autotune_log_search_space", "autotune_log_search_space_verbose",
    "autotune_log_search_space_path",
})
# settings that only silence Helion's own warnings: accepted quietly
QUIET = frozenset({"ignore_warnings"})
BACKENDS = ("triton",)


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


def _effort(value, source: str = "autotune_effort") -> str:
    if value == "auto":  # Helion picks an effort from the search space; tilefn's quick is its smallest search
        return "quick"
    if value not in EFFORTS:
        raise SettingsError(f"{source} must be one of {list(EFFORTS)}, got {value!r}")
    return value


def _search(value, source: str = "autotune_search") -> str:
    value = SEARCH_NAMES.get(value, value)
    if value not in set(SEARCH_NAMES.values()):
        raise SettingsError(f"{source} must be one of {sorted(SEARCH_NAMES) + sorted(set(SEARCH_NAMES.values()))}, "
                            f"got {value!r}")
    return value


def _ref_mode(value) -> str:
    """Helion's RefMode enum (or its name) -> "off" / "eager"."""
    mode = str(getattr(value, "name", value)).lower()
    if mode not in ("off", "eager"):
        raise SettingsError(f"ref_mode must be 'off' or 'eager' (RefMode.OFF / RefMode.EAGER), got {value!r}")
    return mode


# torch.set_float32_matmul_precision's names, which Helion also takes, -> tl.dot's
TORCH_PRECISIONS = {"default": "tf32", "high": "tf32x3", "highest": "ieee"}


def _dot_precision(value, source: str = "dot_precision") -> str:
    if value not in DOT_PRECISIONS and value not in TORCH_PRECISIONS:
        raise SettingsError(f"{source} must be one of {list(DOT_PRECISIONS) + list(TORCH_PRECISIONS)}, "
                            f"got {value!r}")
    return value


def triton_precision(value: str) -> str:
    """A dot_precision setting as tl.dot's input_precision."""
    return TORCH_PRECISIONS.get(value, value)


def _backend(value) -> str:
    if value not in BACKENDS:
        raise SettingsError(f"backend={value!r} is not supported by tilefn: tilefn generates Triton only")
    return value


def _baseline(value):
    if value is not None and not callable(value):
        raise SettingsError(f"autotune_baseline_fn must be a function of the kernel's arguments, got {value!r}")
    return value


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _overrides(value) -> tuple:
    return tuple(sorted(((k, _freeze(v)) for k, v in dict(value or {}).items()), key=lambda kv: kv[0]))


# per setting: how a decorator argument or an assignment is checked and normalised
CHECKS = {
    "autotune_effort": _effort, "autotune_search": _search, "ref_mode": _ref_mode,
    "dot_precision": _dot_precision, "backend": _backend, "autotune_baseline_fn": _baseline,
    "autotune_config_overrides": _overrides, "static_shapes": bool, "print_output_code": bool,
    "print_repro": bool, "force_autotune": bool, "autotune_progress_bar": bool, "autotune_random_seed": int,
}


def _from_env() -> dict:
    """The settings the environment variables give (Helion's names), as field values."""
    effort = _env_str("HELION_AUTOTUNE_EFFORT")
    effort = _effort(effort, "HELION_AUTOTUNE_EFFORT") if effort else "quick"
    if _env_bool("HELION_USE_DEFAULT_CONFIG", False):
        effort = "none"
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
    return dict(
        autotune_effort=effort,
        static_shapes=_env_bool("HELION_STATIC_SHAPES", True),
        print_output_code=_env_bool("HELION_PRINT_OUTPUT_CODE", False),
        print_repro=_env_bool("HELION_PRINT_REPRO", False),
        force_autotune=_env_bool("HELION_FORCE_AUTOTUNE", False),
        autotune_log=_env_str("HELION_AUTOTUNE_LOG"),
        autotune_random_seed=_env_int("HELION_AUTOTUNE_RANDOM_SEED", 0),
        autotune_progress_bar=_env_bool("HELION_AUTOTUNE_PROGRESS_BAR", True),
        autotune_search=_search(_env_str("HELION_AUTOTUNER") or "default", "HELION_AUTOTUNER"),
        autotune_config_overrides=_overrides(overrides),
        ref_mode="eager" if _env_bool("HELION_INTERPRET", False) else "off",
        dot_precision=_dot_precision(_env_str("TRITON_F32_DEFAULT") or "tf32", "TRITON_F32_DEFAULT"),
        autotune_baseline_fn=None,
        backend=_backend(_env_str("HELION_BACKEND") or "triton"),
        ignored=(),
    )


def _applied(fields: dict, kwargs: dict) -> dict:
    """`fields` with Helion's `name=value` arguments applied, checked as the decorator checks them."""
    changes, ignored = {}, dict(fields["ignored"])
    for name, value in kwargs.items():
        if name == "use_default_config":
            if value:
                changes["autotune_effort"] = "none"
        elif name in fields and name != "ignored":
            changes[name] = CHECKS.get(name, lambda v: v)(value)
        elif name in NO_EFFECT or name in QUIET:
            ignored[name] = value
        else:
            known = sorted(set(fields) - {"ignored"} | NO_EFFECT | QUIET | {"use_default_config"})
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"helion.kernel() got an unknown setting {name!r}{hint}")
    return {**fields, **changes, "ignored": tuple(ignored.items())}


@attrs.frozen(init=False)
class Settings:
    """The settings of one `helion.kernel`: `Settings(**helion_settings)` (or `Settings.build`) reads the
    environment variables, then applies the arguments on top, as Helion's constructor does."""

    autotune_effort: str
    static_shapes: bool
    print_output_code: bool
    print_repro: bool
    force_autotune: bool
    autotune_log: str | None
    autotune_random_seed: int
    autotune_progress_bar: bool
    autotune_search: str
    autotune_config_overrides: tuple
    ref_mode: str  # "eager": run tilefn.interpret (eager PyTorch, tile by tile) instead of Triton
    dot_precision: str  # Helion's default "tf32" (TRITON_F32_DEFAULT); tfn.jit's own default is "ieee"
    autotune_baseline_fn: object = attrs.field(eq=False)  # a function giving tuning's reference outputs
    backend: str
    ignored: tuple  # (name, value) of Helion settings accepted with no effect in tilefn

    def __init__(self, **kwargs):
        self._fill(_applied(_from_env(), kwargs))

    def _fill(self, fields: dict) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @classmethod
    def build(cls, **kwargs) -> "Settings":
        """Environment variables first, then these decorator arguments on top."""
        return cls(**kwargs)

    def with_(self, **kwargs) -> "Settings":
        """These settings with Helion's `name=value` arguments applied (checked, as the decorator does)."""
        made = object.__new__(Settings)
        made._fill(_applied(attrs.asdict(self, recurse=False), kwargs))
        return made

    def get(self, name: str):
        """A setting's value, including those accepted with no effect (None where never given)."""
        if name in NO_EFFECT or name in QUIET:
            return dict(self.ignored).get(name)
        if name == "ignored" or name not in {f.name for f in attrs.fields(Settings)}:
            raise AttributeError(f"helion.kernel has no setting {name!r}")
        return getattr(self, name)

    def no_effect(self) -> list:
        """The names of settings given that change nothing in tilefn."""
        return [n for n, _ in self.ignored if n not in QUIET]

    def warn_ignored(self, kernel_name: str, names=None) -> None:
        names = self.no_effect() if names is None else names
        if names:
            warnings.warn(f"helion.kernel {kernel_name}: settings {names} have no effect in tilefn",
                          stacklevel=4)


class SettingsView:
    """`kernel.settings`: reads the kernel's Settings; `kernel.settings.x = v` rebuilds the kernel with it."""

    def __init__(self, kernel):
        object.__setattr__(self, "_kernel", kernel)

    def __getattr__(self, name):
        return self._kernel.settings_value.get(name)

    def __setattr__(self, name, value):
        self._kernel.configure(self._kernel.settings_value.with_(**{name: value}), changed=name)

    def __repr__(self):
        return repr(self._kernel.settings_value)
