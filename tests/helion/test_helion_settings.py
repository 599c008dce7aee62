"""tilefn.helion's Settings: environment, decorator arguments, assignment, and what each one does."""
from __future__ import annotations

import warnings

import attrs
import pytest
import torch

import tilefn.helion as helion
import tilefn.helion.language as hl

SCALE = 0.5
SMALL = helion.Config(block_sizes=[8, 16])


def scaled_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] * SCALE + y[tile]
    return out


def matmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty([x.size(0), y.size(1)], device=x.device)
    for tm, tn in hl.tile([x.size(0), y.size(1)]):
        acc = hl.zeros([tm, tn])
        for tk in hl.tile(x.size(1)):
            acc = torch.addmm(acc, x[tm, tk], y[tk, tn])
        out[tm, tn] = acc
    return out


def xy():
    torch.manual_seed(0)
    return torch.randn(20, 30), torch.randn(20, 30)


# --- Settings ---------------------------------------------------------------------------------
def test_settings_defaults_and_frozen():
    s = helion.Settings.build()
    assert (s.autotune_effort, s.print_output_code, s.print_repro, s.force_autotune, s.autotune_log) == \
        ("quick", False, False, False, None)
    assert s.dot_precision == "tf32"  # Helion's default
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        s.print_output_code = True


def test_settings_from_env_vars(monkeypatch):
    monkeypatch.setenv("HELION_PRINT_OUTPUT_CODE", "1")
    monkeypatch.setenv("HELION_FORCE_AUTOTUNE", "true")
    monkeypatch.setenv("HELION_AUTOTUNE_EFFORT", "full")
    monkeypatch.setenv("HELION_PRINT_REPRO", "1")
    monkeypatch.setenv("HELION_AUTOTUNE_LOG", "/tmp/somewhere")
    s = helion.Settings.build()
    assert (s.print_output_code, s.force_autotune, s.autotune_effort, s.print_repro, s.autotune_log) == \
        (True, True, "full", True, "/tmp/somewhere")


def test_decorator_arguments_override_env_vars(monkeypatch):
    monkeypatch.setenv("HELION_PRINT_OUTPUT_CODE", "1")
    monkeypatch.setenv("HELION_AUTOTUNE_EFFORT", "full")
    k = helion.kernel(print_output_code=False, autotune_effort="none")(scaled_add)
    assert k.settings.print_output_code is False and k.settings.autotune_effort == "none"


def test_settings_are_read_at_decoration(monkeypatch):
    k = helion.kernel(scaled_add)
    monkeypatch.setenv("HELION_PRINT_OUTPUT_CODE", "1")
    assert not k.settings.print_output_code
    assert helion.kernel(scaled_add).settings.print_output_code


def test_use_default_config_means_effort_none(monkeypatch):
    assert helion.kernel(use_default_config=True)(scaled_add).settings.autotune_effort == "none"
    monkeypatch.setenv("HELION_USE_DEFAULT_CONFIG", "1")
    assert helion.Settings.build().autotune_effort == "none"


@pytest.mark.parametrize("name, value", [("HELION_PRINT_OUTPUT_CODE", "maybe"), ("HELION_AUTOTUNE_EFFORT", "max")])
def test_bad_env_values_are_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(helion.SettingsError, match=name):
        helion.Settings.build()


def test_interpret_mode_runs_eager_pytorch(monkeypatch):
    from tilefn.tune.tune import TunedFunction

    monkeypatch.setattr(TunedFunction, "__call__", lambda *a: pytest.fail("ref mode must not compile"))
    monkeypatch.setenv("HELION_INTERPRET", "1")
    k = helion.kernel(config=SMALL)(scaled_add)
    assert k.settings.ref_mode == "eager"
    x, y = xy()
    torch.testing.assert_close(k(x, y), x * SCALE + y)


def test_unknown_and_unsupported_settings():
    with pytest.raises(TypeError, match="did you mean 'print_output_code'"):
        helion.kernel(print_output_cod=True)(scaled_add)
    with pytest.raises(helion.SettingsError, match="Triton only"):
        helion.kernel(backend="pallas")(scaled_add)
    with pytest.warns(UserWarning, match=r"\['fast_math'\] have no effect"):
        helion.kernel(fast_math=True, ignore_warnings=[helion.exc.TensorOperationInWrapper])(scaled_add)


# --- assignment (Helion's `kernel.settings.x = v`) -------------------------------------------
def test_assigning_a_setting_rebuilds_the_kernel(capsys):
    k = helion.kernel(config=SMALL)(scaled_add)
    x, y = xy()
    torch.testing.assert_close(k(x, y), x * SCALE + y)
    k.settings.print_output_code = True
    assert k.settings.print_output_code is True
    torch.testing.assert_close(k(x, y), x * SCALE + y)
    assert "@triton.jit" in capsys.readouterr().err  # the new setting acts on the next call


def test_assignment_is_checked_and_unknown_names_refused():
    k = helion.kernel(config=SMALL)(scaled_add)
    with pytest.raises(helion.SettingsError, match="autotune_effort must be one of"):
        k.settings.autotune_effort = "max"
    with pytest.raises(TypeError, match="unknown setting 'autotune_efort'"):
        k.settings.autotune_efort = "quick"
    assert k.settings.autotune_effort == "quick"  # a refused assignment changes nothing


def test_assigning_a_setting_with_no_effect_warns_once_and_reads_back():
    k = helion.kernel(config=SMALL)(scaled_add)
    with pytest.warns(UserWarning, match=r"\['autotune_precompile'\] have no effect"):
        k.settings.autotune_precompile = "spawn"
    assert k.settings.autotune_precompile == "spawn"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        k.settings.autotune_progress_bar = False  # one that acts: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        k.settings.static_shapes = False  # acts (symbolic sizes): no warning
    assert k.settings.static_shapes is False and k.jitted.static_shapes is False


# --- dot_precision ----------------------------------------------------------------------------
@pytest.mark.parametrize("precision, triton", [("tf32", "tf32"), ("ieee", "ieee"), ("tf32x3", "tf32x3"),
                                               ("default", "tf32"), ("high", "tf32x3"), ("highest", "ieee")])
def test_dot_precision_reaches_tl_dot(precision, triton):
    x, y = torch.randn(32, 32), torch.randn(32, 32)
    k = helion.kernel(config=helion.Config(block_sizes=[16, 16, 16]), dot_precision=precision)(matmul)
    assert k.settings.dot_precision == precision
    assert f'input_precision="{triton}"' in k.bind((x, y)).to_triton_code()
    torch.testing.assert_close(k(x, y), x @ y, rtol=1e-2, atol=1e-2)


def test_dot_precision_from_triton_env_and_by_assignment(monkeypatch):
    monkeypatch.setenv("TRITON_F32_DEFAULT", "ieee")
    k = helion.kernel(config=helion.Config(block_sizes=[16, 16, 16]))(matmul)
    x, y = torch.randn(32, 32), torch.randn(32, 32)
    assert 'input_precision="ieee"' in k.bind((x, y)).to_triton_code()
    k.settings.dot_precision = "tf32"
    assert 'input_precision="tf32"' in k.bind((x, y)).to_triton_code()
    with pytest.raises(helion.SettingsError, match="dot_precision must be one of"):
        k.settings.dot_precision = "bf16"


# --- autotune_baseline_fn ---------------------------------------------------------------------
def test_baseline_fn_is_what_candidates_must_match():
    configs = [SMALL, helion.Config(block_sizes=[16, 8], num_warps=2)]
    x, y = xy()
    right = helion.kernel(configs=configs, autotune_progress_bar=False,
                          autotune_baseline_fn=lambda x, y: x * SCALE + y)(scaled_add)
    torch.testing.assert_close(right(x, y), x * SCALE + y)
    wrong = helion.kernel(configs=configs, autotune_progress_bar=False, force_autotune=True,
                          autotune_baseline_fn=lambda x, y: x - y)(scaled_add)
    with pytest.raises(RuntimeError, match="gave a wrong result"):
        wrong(x, y)  # every candidate differs from the baseline, so none is trusted
    with pytest.raises(helion.SettingsError, match="autotune_baseline_fn must be a function"):
        helion.kernel(autotune_baseline_fn=3)(scaled_add)


def test_settings_constructor_takes_helion_settings_as_helions_does(monkeypatch):
    monkeypatch.setenv("HELION_AUTOTUNE_EFFORT", "full")
    s = helion.Settings(autotune_accuracy_check=False, print_output_code=True)
    assert (s.autotune_effort, s.print_output_code, s.get("autotune_accuracy_check")) == ("full", True, False)
    assert s == helion.Settings.build(autotune_accuracy_check=False, print_output_code=True)
    assert s.with_(print_output_code=False).print_output_code is False and s.print_output_code is True
