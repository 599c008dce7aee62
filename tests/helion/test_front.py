"""The tilefn.helion front: settings and their env vars, helion.Config, helion.kernel's modes and
methods (bind / to_triton_code / autotune), print_output_code, print_repro and autotune_log."""
from __future__ import annotations

import re
import subprocess
import sys
import warnings

import pytest
import torch

import tilefn as tfn
import tilefn.helion as helion
import tilefn.helion.language as hl
import tilefn.testing as tt
from tilefn.helion.autotuner import BooleanFragment, EnumFragment, IntegerFragment, PowerOfTwoFragment
from tilefn.helion.repro import BEGIN, END
from tilefn.tune.benchmark import Benchmarker

SCALE = 0.5  # a module constant the repro script has to carry along


def _offset(v):
    return v + 1.0


def scaled_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] * SCALE + y[tile]
    return out


def gather_rows(table: torch.Tensor, rows: torch.Tensor, eps: float) -> torch.Tensor:
    n = rows.size(0)
    _, d = table.size()
    out = torch.empty([n, d], dtype=table.dtype, device=table.device)
    for tile_n, tile_d in hl.tile([n, d]):
        out[tile_n, tile_d] = _offset(table[rows[tile_n], tile_d] * SCALE) + eps
    return out


def row_sum(x: torch.Tensor) -> torch.Tensor:
    m, _ = x.size()
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tile_m in hl.tile(m):
        out[tile_m] = x[tile_m, :].sum(-1)
    return out


SMALL = helion.Config(block_sizes=[8, 16])
OTHER = helion.Config(block_sizes=[16, 8], num_warps=2)


def xy():
    torch.manual_seed(0)
    return torch.randn(20, 30), torch.randn(20, 30)


# --- Config -----------------------------------------------------------------------------------
def test_config_takes_helion_keys_and_equals_tfn_config():
    c = helion.Config(block_sizes=[64, 32], num_warps=4, num_stages=2, indexing=["pointer", "block_ptr"],
                      pid_type="flat", l2_groupings=[4], loop_orders=[[1, 0]], reduction_loops=[None],
                      range_unroll_factors=[0, 2], num_sm_multiplier=1, maxnreg=None)
    t = tfn.Config(block_sizes=[64, 32], num_warps=4, num_stages=2, indexing=("pointer", "block_ptr"),
                   l2_groupings=[4], loop_orders=[(1, 0)], reduction_loops=[None], range_unroll_factors=[0, 2])
    assert isinstance(c, tfn.Config) and c == t and t == c and hash(c) == hash(t)
    assert helion.Config(block_sizes=[[64], [32]]) == helion.Config(block_sizes=[64, 32])  # old nested form
    # Helion's eviction spelling is Triton's without the "evict_" prefix
    e = helion.Config(load_eviction_policies=["first", "", "last"])
    assert e.load_eviction_policies == ("evict_first", "", "evict_last") and e["load_eviction_policies"] == \
        ["first", "", "last"] and eval(repr(e), {"helion": helion}) == e


def test_config_errors():
    with pytest.raises(helion.ConfigError, match="did you mean 'num_warps'"):
        helion.Config(num_warp=4)
    with pytest.raises(helion.ConfigError, match="maxnreg"):
        helion.Config(maxnreg=128)
    with pytest.raises(helion.ConfigError, match="indexing"):
        helion.Config(indexing="pointers")
    with pytest.raises(helion.ConfigError, match="pid_type"):
        helion.Config(pid_type="spiral")
    with pytest.raises(helion.ConfigError, match="unknown key 'weird'"):
        helion.Config(weird=[1, 2])


def test_config_dot_config_is_its_dict():
    c = helion.Config(block_sizes=[8, 16], num_warps=2)
    assert c.config == c.to_dict() == {"block_sizes": [8, 16], "num_warps": 2}


def test_config_repr_json_and_mapping(tmp_path):
    c = helion.Config(block_sizes=[64, 32], num_warps=4, indexing="block_ptr", split_k=4)
    assert eval(repr(c), {"helion": helion}) == c
    assert c["num_warps"] == 4 and c["block_sizes"] == [64, 32] and c["split_k"] == 4
    c.save(tmp_path / "best.json")
    assert helion.Config.load(tmp_path / "best.json") == c
    assert helion.Config.from_json(c.to_json()) == c


# --- kernel modes -----------------------------------------------------------------------------
def test_bare_and_called_decorator_forms():
    x, y = xy()
    for k in (helion.kernel(scaled_add), helion.kernel()(scaled_add),
              helion.kernel(autotune_effort="none")(scaled_add)):
        assert isinstance(k, helion.Kernel) and k.__name__ == "scaled_add"
    k = helion.kernel(autotune_effort="none")(scaled_add)
    torch.testing.assert_close(k(x, y), x * SCALE + y)


def test_config_runs_without_tuning(monkeypatch):
    from tilefn.tune.tune import TunedFunction

    monkeypatch.setattr(TunedFunction, "_search", lambda *a: pytest.fail("a fixed config must not be tuned"))
    k = helion.kernel(config=SMALL)(scaled_add)
    x, y = xy()
    torch.testing.assert_close(k(x, y), x * SCALE + y)
    assert k.bind((x, y)).config == SMALL


def test_configs_tunes_among_them(tmp_path):
    k = helion.kernel(configs=[SMALL, OTHER], autotune_progress_bar=False, autotune_log=str(tmp_path / "run"))
    k = k(scaled_add)
    x, y = xy()
    torch.testing.assert_close(k(x, y), x * SCALE + y)
    assert k.bind((x, y)).config in (SMALL, OTHER)
    rows = (tmp_path / "run.csv").read_text().splitlines()
    assert rows[0].startswith("kernel,signature,effort") and len(rows) == 2 and "scaled_add" in rows[1]
    assert "helion.Config(" in (tmp_path / "run.log").read_text()


def test_force_autotune_ignores_the_given_config():
    odd = helion.Config(block_sizes=[2, 2], num_warps=1)
    k = helion.kernel(config=odd, force_autotune=True, autotune_effort="none")(scaled_add)
    x, y = xy()
    torch.testing.assert_close(k(x, y), x * SCALE + y)
    assert k.bind((x, y)).config != odd  # the search (here: its default) chose instead


def test_config_overrides_apply_to_the_chosen_config():
    k = helion.kernel(autotune_effort="none", autotune_config_overrides={"num_warps": 1})(scaled_add)
    x, y = xy()
    k(x, y)
    assert k.bind((x, y)).config.num_warps == 1


def test_keyword_arguments_and_defaults():
    k = helion.kernel(config=SMALL)(gather_rows)
    table, rows = torch.randn(10, 30), torch.randint(0, 10, [20])
    expected = table[rows] * SCALE + 1.0 + 0.25
    torch.testing.assert_close(k(table, rows, eps=0.25), expected)
    torch.testing.assert_close(k(table=table, rows=rows, eps=0.25), expected)


def blend(beta: float, x: torch.Tensor, y: torch.Tensor, shift=None, *, scale: float = 1.0) -> torch.Tensor:
    """Scalars before the tensors (as Helion's jsd_kernel), an optional tensor, a keyword-only scale."""
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        v = beta * x[tile] + (1 - beta) * y[tile]
        out[tile] = (v + shift[tile] if shift is not None else v) * scale
    return out


def test_scalars_before_tensors_keyword_only_and_skipped_defaults():
    k = helion.kernel(config=SMALL)(blend)
    x, y = xy()
    shift = torch.randn(20, 30)
    torch.testing.assert_close(k(0.25, x, y), 0.25 * x + 0.75 * y)
    torch.testing.assert_close(k(0.25, x, y, scale=2.0), (0.25 * x + 0.75 * y) * 2)  # after a skipped default
    torch.testing.assert_close(k(0.5, x, y=y, shift=shift, scale=-1.0), -(0.5 * x + 0.5 * y + shift))
    assert "def blend(beta, x, y" in k.bind((0.25, x, y)).to_triton_code()  # (beta: a runtime float)
    assert k.tuned.cache_info().compiles == 2  # (shift given or not), not one per beta or scale


def matmul_epilogue(x: torch.Tensor, y: torch.Tensor, epilogue=lambda acc, tile: acc) -> torch.Tensor:
    m, kk = x.size()
    _, n = y.size()
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tile_m, tile_n in hl.tile([m, n]):
        acc = hl.zeros([tile_m, tile_n], dtype=torch.float32)
        for tile_k in hl.tile(kk):
            acc = torch.addmm(acc, x[tile_m, tile_k], y[tile_k, tile_n])
        out[tile_m, tile_n] = epilogue(acc, (tile_m, tile_n))
    return out


def test_a_callable_epilogue_capturing_a_tensor_matches_eager():
    k = helion.kernel(config=helion.Config(block_sizes=[16, 16, 16]))(matmul_epilogue)
    x, y = torch.randn(24, 40), torch.randn(40, 20)
    torch.testing.assert_close(k(x, y), x @ y, rtol=1e-4, atol=1e-4)
    for _ in range(2):  # a new lambda each call: one signature, each call's own bias
        bias = torch.randn(20)
        got = k(x, y, lambda acc, tile: torch.relu(acc + bias[tile[1]]))
        torch.testing.assert_close(got, torch.relu(x @ y + bias), rtol=1e-4, atol=1e-4)
    assert len(k.tuned.signatures()) == 2


def test_tuple_arguments_of_tensors_and_sizes():
    def pair_sum(pair: tuple[torch.Tensor, torch.Tensor], dims: list[int]) -> torch.Tensor:
        out = torch.empty(dims, dtype=pair[0].dtype, device=pair[0].device)
        for tile in hl.tile(dims):
            a, b = pair
            out[tile] = a[tile] + b[tile]
        return out

    k = helion.kernel(config=SMALL)(pair_sum)
    x, y = xy()
    torch.testing.assert_close(k((x, y), [20, 30]), x + y)


# --- bind / to_triton_code / autotune ---------------------------------------------------------
def test_bind_to_triton_code():
    x, y = xy()
    bound = helion.kernel(config=SMALL)(scaled_add).bind((x, y))
    code = bound.to_triton_code()
    assert "@triton.jit" in code and "BLOCK" in code and "=8" in code.replace(" ", "")
    other = bound.to_triton_code(OTHER)
    assert other != code and "num_warps=2" in other
    assert bound.to_triton_code({"block_sizes": [16, 8], "num_warps": 2}) == other
    torch.testing.assert_close(bound.compile_config(OTHER)(x, y), x * SCALE + y)


def test_autotune_returns_the_best_config_and_uses_it():
    k = helion.kernel(configs=[SMALL, OTHER], autotune_progress_bar=False)(scaled_add)
    x, y = xy()
    best = k.autotune((x, y), force=True)
    assert isinstance(best, helion.Config) and best in (SMALL, OTHER)
    assert k.bind((x, y)).config == best
    torch.testing.assert_close(k(x, y), x * SCALE + y)


def test_autotune_replaces_a_fixed_config_for_its_signature():
    odd = helion.Config(block_sizes=[2, 2], num_warps=1)
    k = helion.kernel(config=odd, autotune_effort="quick", autotune_progress_bar=False)(scaled_add)
    x, y = xy()
    best = k.autotune((x, y))
    assert k.bind((x, y)).config == best != odd
    torch.testing.assert_close(k(x, y), x * SCALE + y)
    assert k.bind((torch.randn(3, 3), torch.randn(3, 3))).config == odd  # other signatures keep it


def test_set_config_on_a_bound_kernel():
    k = helion.kernel(autotune_effort="none")(scaled_add)
    x, y = xy()
    k.bind((x, y)).set_config(OTHER)
    torch.testing.assert_close(k(x, y), x * SCALE + y)
    assert k.bind((x, y)).config == OTHER


# --- debugging output -------------------------------------------------------------------------
def test_print_output_code_once_per_signature(capsys):
    k = helion.kernel(config=SMALL, print_output_code=True)(scaled_add)
    x, y = xy()
    k(x, y)
    k(x, y)
    assert capsys.readouterr().err.count("@triton.jit") == 1
    k(torch.randn(5, 7), torch.randn(5, 7))
    assert capsys.readouterr().err.count("@triton.jit") == 1


def test_print_output_code_from_env(monkeypatch, capsys):
    monkeypatch.setenv("HELION_PRINT_OUTPUT_CODE", "1")
    k = helion.kernel(config=SMALL)(scaled_add)
    k(*xy())
    assert "@triton.jit" in capsys.readouterr().err


def _run_repro(err: str, tmp_path) -> subprocess.CompletedProcess:
    match = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), err, re.S)
    assert match, err
    script = tmp_path / "repro.py"
    script.write_text(match.group(1) + "\n\nprint('REPRO RESULT', tuple(helion_repro_caller().shape))\n")
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)


def test_print_repro_script_runs(capsys, tmp_path):
    k = helion.kernel(config=helion.Config(block_sizes=[4, 8]), print_repro=True)(gather_rows)
    table = torch.randn(30, 10).t()              # non-contiguous: rebuilt with its strides
    rows = torch.randint(0, 10, [20])
    k(table, rows, 0.5)
    err = capsys.readouterr().err
    assert "SCALE = 0.5" in err and "def _offset" in err and "helion.Config(block_sizes=[4, 8])" in err
    result = _run_repro(err, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "REPRO RESULT (20, 30)" in result.stdout


def test_print_repro_from_env_after_tuning(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HELION_PRINT_REPRO", "1")
    k = helion.kernel(autotune_effort="none")(row_sum)
    k(torch.randn(9, 33))
    result = _run_repro(capsys.readouterr().err, tmp_path)
    assert result.returncode == 0 and "REPRO RESULT (9,)" in result.stdout, result.stderr


# --- helion.language --------------------------------------------------------------------------
def test_specialize_is_identity_for_sizes():
    assert hl.specialize(7) == 7 and hl.specialize(torch.Size([2, 3])) == (2, 3)
    assert hl.specialize(2.5) == 2.5  # a static float (a runtime one is compiled in: tests/helion/test_language.py)
    with pytest.raises(TypeError):
        hl.specialize("2")


def _tunable_kernel(x: torch.Tensor) -> torch.Tensor:
    m, n = x.size()
    factor = hl.register_tunable("factor", EnumFragment((1, 2, 3)))
    block = hl.register_tunable("block_n", PowerOfTwoFragment(16, 64))
    out = torch.empty_like(x)
    for tile_m in hl.tile(m):
        for tile_n in hl.tile(n, block_size=block):
            out[tile_m, tile_n] = x[tile_m, tile_n] * factor
    return out


def test_register_tunable_reads_the_config():
    x = torch.randn(10, 40)
    k = helion.kernel(config=helion.Config(block_sizes=[4], factor=3, block_n=32))(_tunable_kernel)
    torch.testing.assert_close(k(x), x * 3)
    assert "BLOCK_TILE_N=32" in k.bind((x,)).to_triton_code()
    with warnings.catch_warnings():  # a knob the config leaves out takes its default, silently
        warnings.simplefilter("error")
        torch.testing.assert_close(helion.kernel(config=helion.Config(block_n=16))(_tunable_kernel)(x), x)


def _blocked_double(x: torch.Tensor) -> torch.Tensor:
    m, n = x.size()
    block = hl.register_tunable("block_n", PowerOfTwoFragment(8, 32, default_val=16))
    flip = hl.register_tunable("flip", BooleanFragment())
    repeats = hl.register_tunable("repeats", IntegerFragment(1, 3))
    out = torch.empty_like(x)
    for tile_m in hl.tile(m):
        for tile_n in hl.tile(n, block_size=block):
            for _ in hl.static_range(repeats):  # the same value, computed `repeats` times
                doubled = (x[tile_m, tile_n] * 2) if not flip else (x[tile_m, tile_n] + x[tile_m, tile_n])
            out[tile_m, tile_n] = doubled
    return out


def test_register_tunable_fragments_become_choices():
    program = tfn.make_ir(_blocked_double)(torch.randn(10, 40))
    assert [(t.name, t.choices, t.default, t.value) for t in program.tunables] == [
        ("block_n", (8, 16, 32), 16, 16), ("flip", (False, True), False, False), ("repeats", (1, 2, 3), 1, 1)]
    knobs = {k.index: k.choices for k in tt.spec_of(_blocked_double, torch.randn(10, 40)).knobs
             if k.field == "tunables"}
    assert knobs == {"block_n": (8, 16, 32), "flip": (False, True), "repeats": (1, 2, 3)}


def test_configs_with_different_tunables_tune_among_them():
    x = torch.randn(10, 40)
    configs = [helion.Config(block_sizes=[2], block_n=8, flip=True, repeats=3),
               helion.Config(block_sizes=[4], block_n=32)]
    k = helion.kernel(configs=configs)(_blocked_double)
    torch.testing.assert_close(k(x), x * 2)
    best = k.bind((x,)).config
    assert best in configs
    code = k.bind((x,)).to_triton_code()
    assert f"BLOCK_TILE_N={best['block_n']}" in code
    assert "BLOCK_TILE_N=8," in k.bind((x,)).to_triton_code(configs[0])
    assert "BLOCK_TILE_N=32," in k.bind((x,)).to_triton_code(configs[1])


def test_autotune_searches_register_tunable_knobs(monkeypatch):
    seen = []
    original = Benchmarker.__call__
    monkeypatch.setattr(Benchmarker, "__call__", lambda self, config: seen.append(config) or original(self, config))
    x = torch.randn(10, 40)
    k = helion.kernel(autotune_effort="quick", autotune_search="random")(_blocked_double)
    torch.testing.assert_close(k(x), x * 2)
    assert len({c.tunables for c in seen}) > 1
    assert dict(k.bind((x,)).config.tunables).keys() == {"block_n", "flip", "repeats"}


def test_register_tunable_errors():
    x = torch.randn(10, 40)
    with pytest.raises(helion.ConfigError, match="factor=5 is not one of"):
        helion.kernel(config=helion.Config(factor=5, block_n=16))(_tunable_kernel)(x)
    with pytest.raises(helion.ConfigError, match="splitk"):
        helion.kernel(config=helion.Config(factor=1, block_n=16, splitk=2))(_tunable_kernel)(x)


def test_missing_helion_language_names_say_so():
    def uses_inline_triton(x):
        out = torch.zeros_like(x)
        for tile in hl.tile(x.size(0)):
            out[tile] = hl.inline_triton("{0} + 1", args=(x[tile],), output_like=x[tile])
        return out

    with pytest.raises(NotImplementedError, match="helion.language.inline_triton"):
        helion.kernel(config=helion.Config(block_sizes=[8]))(uses_inline_triton)(torch.randn(16))


def test_config_shorthand_keys_are_one_entry_lists_as_in_helion():
    c = helion.Config(block_size=64, loop_order=[1, 0], l2_grouping=4, reduction_loop=None, flatten_loop=False,
                      range_unroll_factor=2, range_num_stage=3, range_multi_buffer=True, range_flatten=False,
                      range_warp_specialize=False, static_range=False)
    assert c == helion.Config(block_sizes=[64], loop_orders=[[1, 0]], l2_groupings=[4], reduction_loops=[None],
                              flatten_loops=[False], range_unroll_factors=[2], range_num_stages=[3],
                              range_multi_buffers=[True], range_flattens=[False], range_warp_specializes=[False],
                              static_ranges=[False])
    with pytest.raises(tfn.errors.ConfigError, match="give block_size or block_sizes, not both"):
        helion.Config(block_size=64, block_sizes=[64])


def test_knobs_without_a_triton_meaning_are_dropped_with_one_warning():
    with pytest.warns(UserWarning, match=r"num_threads=\.\.\.\) has no meaning for Triton") as record:
        c = helion.Config(block_sizes=[32], num_threads=[128])
    assert len(record) == 1 and c == helion.Config(block_sizes=[32])


def _atomic_kernel(sem):
    def k(x, idx, y):
        for tile in hl.tile(idx.size(0)):
            hl.atomic_add(x, [idx[tile]], y[tile], sem=sem)
        return x
    return k


def test_hl_atomics_compute_and_raise_helions_errors():
    idx, y = torch.randint(0, 5, (40,)), torch.randn(40)
    got = helion.kernel(config=helion.Config(block_sizes=[16]))(_atomic_kernel("release"))(torch.zeros(5), idx, y)
    torch.testing.assert_close(got, torch.zeros(5).index_add_(0, idx, y))
    with pytest.raises(helion.exc.InternalError, match="Invalid memory semantic 'ERROR'"):
        helion.kernel(config=helion.Config(block_sizes=[16]))(_atomic_kernel("ERROR"))(torch.zeros(5), idx, y)

    def on_device(x):
        for tile in hl.tile(x.size(0)):
            acc = hl.zeros([tile], dtype=x.dtype)
            hl.atomic_add(acc, [tile], x[tile])
        return x

    with pytest.raises(helion.exc.AtomicOnDeviceTensor, match=r"hl\.atomic_add\(\)"):
        helion.kernel(config=helion.Config(block_sizes=[16]))(on_device)(torch.ones(32))


def test_atomic_indexing_is_a_config_key():
    c = helion.Config(block_sizes=[16], atomic_indexing=["pointer", "tensor_descriptor"])
    assert c.atomic_indexing == ("pointer", "tensor_descriptor")
    assert helion.Config.from_json(c.to_json()) == c and c["atomic_indexing"] == ["pointer", "tensor_descriptor"]
    with pytest.raises(helion.ConfigError, match="atomic_indexing must be one of"):
        helion.Config(atomic_indexing="block_ptr")


def test_compile_config_honours_a_new_static_argument():
    """The compiled callable holds scalars as constants: another value must not reuse them."""
    def shifted(x, shift: float):
        out = torch.empty_like(x)
        for t in hl.tile(x.size()):
            out[t] = x[t] + shift
        return out

    x = torch.randn(20)
    run = helion.kernel(config=helion.Config(block_sizes=[8]))(shifted).bind((x, 1.0)).compile_config()
    torch.testing.assert_close(run(x, 1.0), x + 1.0)
    torch.testing.assert_close(run(x, 2.5), x + 2.5)


def test_compile_config_takes_a_call_with_a_defaulted_function_argument():
    def shifted(x, fn=None):
        out = torch.empty_like(x)
        for t in hl.tile(x.size()):
            out[t] = x[t] + 1 if fn is None else fn(x[t])
        return out

    x = torch.randn(20)
    run = helion.kernel(config=helion.Config(block_sizes=[8]))(shifted).bind((x,)).compile_config()
    torch.testing.assert_close(run(x), x + 1)
    torch.testing.assert_close(run(x, lambda v: v * 3), x * 3)


def test_helion_key_argument_joins_the_specialization_key():
    import tilefn.helion as helion
    import tilefn.helion.language as hl

    def double(x):
        out = torch.empty_like(x)
        for tile in hl.tile(x.size(0)):
            out[tile] = x[tile] * 2
        return out

    kernel = helion.kernel(double, key=lambda x: x.shape[0] > 16, autotune_effort="none")
    a, b = torch.randn(8), torch.randn(8)
    assert kernel.specialization_key((a,)) == kernel.specialization_key((b,))
    assert kernel.specialization_key((a,)) != kernel.specialization_key((torch.randn(32),))
    torch.testing.assert_close(kernel(a), a * 2)
    aot = helion.aot_kernel(key=lambda x: 0, autotune_effort="none")(double)
    torch.testing.assert_close(aot(b), b * 2)
