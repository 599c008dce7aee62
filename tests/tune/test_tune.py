"""`tfn.tune` on the CPU interpreter with tiny inputs: correct results, one tuning per signature,
`configs=[...]`, failing candidates skipped, the on-disk cache, inputs restored, effort="none"."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.tune import cache
from tilefn.tune.benchmark import Benchmarker
from tilefn.tune.spec import ConfigSpec
from tilefn.tune.tune import BUDGETS
from kernels import add

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def increment(x):
    """Writes its input in place: tuning runs it many times, the caller must see it run once."""
    for t in tl.tile(x.shape):
        x[t] = x[t] + 1


def by_block(x):
    """A result that depends on the block size: any block other than the default's is 'wrong'."""
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] + (t.end - t.begin)
    return out


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path))
    return tmp_path / "tune"


@pytest.fixture
def evaluations(monkeypatch):
    """Every config the Benchmarker is asked to evaluate, in order."""
    seen = []
    original = Benchmarker.__call__

    def counting(self, config):
        seen.append(config)
        return original(self, config)

    monkeypatch.setattr(Benchmarker, "__call__", counting)
    return seen


def inputs(m=8, n=32):
    return torch.randn(m, n), torch.randn(m, n)


def spec_of(fn, *args) -> ConfigSpec:
    return ConfigSpec.of(tfn.make_ir(fn)(*args))


def test_quick_tuning_is_correct_and_later_calls_are_cache_hits(evaluations):
    x, y = inputs()
    tuned = tfn.tune(add, effort="quick", verbose=False)
    torch.testing.assert_close(tuned(x, y), x + y)
    assert 1 < len(evaluations) <= BUDGETS["cpu"]["quick"]
    assert len(set(evaluations)) == len(evaluations)
    tuned_count = len(evaluations)
    best = tuned.best_config(x, y)
    spec = spec_of(add, x, y)
    assert spec.normalize(best) == best  # a config from the spec
    a, b = inputs()  # same signature, new values
    for _ in range(3):
        torch.testing.assert_close(tuned(a, b), a + b)
        torch.testing.assert_close(tuned(x, y), x + y)
    assert tuned.best_config(a, b) == best
    assert len(evaluations) == tuned_count  # no re-tuning
    # a new signature tunes again, once
    c, d = inputs(5, 7)
    torch.testing.assert_close(tuned(c, d), c + d)
    assert len(evaluations) > tuned_count
    again = len(evaluations)
    tuned(c, d)
    assert len(evaluations) == again


@pytest.mark.parametrize("search", ["random", "pattern", "de", "default"])
def test_every_search_tunes(search, evaluations):
    x, y = inputs()
    tuned = tfn.tune(tfn.jit(add), effort="quick", search=search, use_cache=False, verbose=False)
    torch.testing.assert_close(tuned(x, y), x + y)
    assert 1 <= len(evaluations) <= BUDGETS["cpu"]["quick"]


def test_configs_tunes_among_those_only(evaluations):
    x, y = inputs()
    candidates = [tfn.Config(block_sizes=[4, 8], num_warps=2), tfn.Config(block_sizes=[8, 16], num_warps=1)]
    tuned = tfn.tune(add, configs=candidates, verbose=False)
    torch.testing.assert_close(tuned(x, y), x + y)
    assert evaluations == candidates
    assert tuned.best_config(x, y) in candidates


def test_failing_candidates_are_skipped(evaluations, caplog):
    x, y = inputs()
    invalid = tfn.Config(block_sizes=[3, 5])  # not powers of two: lowering rejects it
    valid = tfn.Config(block_sizes=[8, 8], num_warps=1)
    with caplog.at_level(logging.INFO, logger="tilefn.tune"):
        tuned = tfn.tune(add, configs=[invalid, valid], verbose=False)
        torch.testing.assert_close(tuned(x, y), x + y)
    assert tuned.best_config(x, y) == valid
    assert evaluations == [invalid, valid]
    assert any("skipped" in r.getMessage() and "power of two" in r.getMessage() for r in caplog.records)


def test_wrong_results_are_skipped(caplog):
    x = torch.zeros(8)
    default = spec_of(by_block, x).default()
    wrong = tfn.Config(block_sizes=[2])  # computes x + 2 where the default computes x + 8
    with caplog.at_level(logging.INFO, logger="tilefn.tune"):
        tuned = tfn.tune(by_block, configs=[wrong, default], verbose=False)
        out = tuned(x)
    assert tuned.best_config(x) == default
    torch.testing.assert_close(out, torch.full([8], 8.0))
    assert any("wrong result" in r.getMessage() for r in caplog.records)


def test_no_correct_candidate_is_an_error():
    x, y = inputs()
    tuned = tfn.tune(add, configs=[tfn.Config(block_sizes=[3, 3])], verbose=False)
    with pytest.raises(RuntimeError, match="no candidate config"):
        tuned(x, y)


def test_the_disk_cache_spares_a_fresh_tuned_function_the_search(evaluations, cache_dir):
    x, y = inputs()
    first = tfn.tune(add, effort="quick", verbose=False)
    first(x, y)
    files = list(cache_dir.glob("*.json"))
    assert len(files) == 1 and not list(cache_dir.glob("*.tmp"))  # written atomically
    entry = json.loads(files[0].read_text())
    assert tfn.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in entry["config"].items()}) \
        == first.best_config(x, y)
    count = len(evaluations)
    second = tfn.tune(add, effort="quick", verbose=False)  # a new TunedFunction: nothing in memory
    torch.testing.assert_close(second(x, y), x + y)
    assert second.best_config(x, y) == first.best_config(x, y)
    assert len(evaluations) == count  # loaded, not searched
    third = tfn.tune(add, effort="quick", use_cache=False, verbose=False)
    third(x, y)
    assert len(evaluations) > count  # use_cache=False searches


def test_the_disk_cache_works_across_processes(cache_dir, tmp_path):
    """The key must be stable from one process to the next (configs=[...] included)."""
    script = tmp_path / "tune_once.py"
    script.write_text(textwrap.dedent("""
        import torch, tilefn as tfn
        from tilefn import lang as tl
        from tilefn.tune.benchmark import Benchmarker

        def add(x, y):
            out = torch.empty_like(x)
            for t in tl.tile(out.shape):
                out[t] = x[t] + y[t]
            return out

        calls = []
        original = Benchmarker.__call__
        Benchmarker.__call__ = lambda self, c: calls.append(c) or original(self, c)
        x = torch.arange(256, dtype=torch.float32).reshape(8, 32)
        configs = [tfn.Config(block_sizes=[4, 8], num_warps=2), tfn.Config(block_sizes=[8, 16])]
        tfn.tune(add, configs=configs, verbose=False)(x, x)
        print("evaluations", len(calls))
    """))
    env = {**os.environ, "PYTHONHASHSEED": "random"}

    def run():
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert run() == "evaluations 2"
    assert run() == "evaluations 0"


def test_a_corrupt_cache_entry_is_ignored_with_a_warning(evaluations, cache_dir, caplog):
    x, y = inputs()
    tfn.tune(add, effort="quick", verbose=False)(x, y)
    (path,) = cache_dir.glob("*.json")
    for garbage in ['{"config": {"block_sizes": [8', '{"config": {"no_such_knob": 1}}', "\x00\xff"]:
        path.write_text(garbage)
        count = len(evaluations)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="tilefn.tune"):
            tuned = tfn.tune(add, effort="quick", verbose=False)
            torch.testing.assert_close(tuned(x, y), x + y)
        assert any(r.levelno == logging.WARNING and "corrupt" in r.getMessage() for r in caplog.records)
        assert len(evaluations) > count  # tuned again
        assert cache.load(path.stem) == tuned.best_config(x, y)  # and the entry is rewritten, valid


def test_cached_configs_with_nested_lists_stay_hashable():
    config = tfn.Config(block_sizes=[4, 8], indexing=("pointer", "block_ptr"), tunables={"unroll": 2})
    cache.store("k", config, 1.0)
    loaded = cache.load("k")
    assert loaded == config and hash(loaded) == hash(config)


def test_mutated_inputs_are_restored(evaluations):
    x = torch.randn(8, 32)
    expected = x + 1
    tuned = tfn.tune(increment, effort="quick", use_cache=False, verbose=False)
    assert tuned(x) is None
    assert len(evaluations) > 1  # tuning ran the kernel many times ...
    assert torch.equal(x, expected)  # ... the caller sees exactly one application
    tuned(x)
    assert torch.equal(x, expected + 1)


def test_mutated_inputs_are_restored_with_configs():
    x = torch.randn(8, 32)
    expected = x + 1
    tuned = tfn.tune(increment, configs=[tfn.Config(block_sizes=[2, 4]), tfn.Config(block_sizes=[8, 32])],
                     use_cache=False, verbose=False)
    tuned(x)
    assert torch.equal(x, expected)


def test_an_in_place_kernel_is_checked_on_what_it_writes(caplog):
    """A kernel with no outputs is checked on its written arguments: a wrong in-place result loses."""

    def bump_by_block(x):
        for t in tl.tile(x.shape[0]):
            x[t] = x[t] + (t.end - t.begin)

    x = torch.zeros(8)
    default = spec_of(bump_by_block, x).default()
    with caplog.at_level(logging.INFO, logger="tilefn.tune"):
        tuned = tfn.tune(bump_by_block, configs=[tfn.Config(block_sizes=[2]), default], use_cache=False,
                         verbose=False)
        tuned(x)
    assert tuned.best_config(x) == default
    assert torch.equal(x, torch.full([8], 8.0))
    assert any("wrong result" in r.getMessage() for r in caplog.records)


def test_effort_none_uses_the_default_without_benchmarking(evaluations, monkeypatch):
    created = []
    monkeypatch.setattr(Benchmarker, "__init__", lambda self, *a, **k: created.append(a) or None)
    x, y = inputs()
    tuned = tfn.tune(add, effort="none", verbose=False)
    torch.testing.assert_close(tuned(x, y), x + y)
    assert tuned.best_config(x, y) == spec_of(add, x, y).default()
    assert evaluations == [] and created == []


SHIFT = 1.0


def shifted(x):
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0]):
        out[t] = x[t] + SHIFT
    return out


def test_a_rebound_captured_global_is_seen_by_a_tuned_kernel(monkeypatch):
    tuned, x = tfn.tune(shifted, effort="none", use_cache=False, verbose=False), torch.randn(8)
    torch.testing.assert_close(tuned(x), x + 1.0)
    monkeypatch.setattr(sys.modules[__name__], "SHIFT", 3.0)
    torch.testing.assert_close(tuned(x), x + 3.0)  # before: the first trace's 1.0 stayed folded in


def test_bad_arguments():
    with pytest.raises(ValueError, match="effort"):
        tfn.tune(add, effort="max")
    with pytest.raises(ValueError, match="search"):
        tfn.tune(add, search="annealing")


def test_verbose_prints_the_config_to_paste(capsys):
    x, y = inputs()
    tfn.tune(add, effort="quick", use_cache=False)(x, y)
    err = capsys.readouterr().err
    assert "tilefn.tune: add:" in err and "tfn.Config(block_sizes=" in err


# --- register_tunable knobs ------------------------------------------------------------------
def tiled(x):
    """x * 2 in square tiles of a tunable size: small tiles are many interpreted programs (slow);
    `sign` = -1 computes a wrong answer."""
    block = tl.register_tunable("block", (2, 16), default=16)
    sign = tl.register_tunable("sign", (1, -1))
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0], block_size=block):
        for tn in tl.tile(x.shape[1], block_size=block):
            out[tm, tn] = x[tm, tn] * 2 * sign
    return out


def test_configs_choose_among_tunable_values_by_speed_and_correctness(evaluations, caplog):
    x = torch.randn(16, 16)
    slow, wrong, fast = (tfn.Config(tunables=t) for t in ({"block": 2}, {"sign": -1}, {"block": 16, "sign": 1}))
    with caplog.at_level(logging.INFO, logger="tilefn.tune"):
        tuned = tfn.tune(tiled, configs=[slow, wrong, fast], use_cache=False, verbose=False)
        torch.testing.assert_close(tuned(x), x * 2)
    assert evaluations == [slow, wrong, fast]
    assert tuned.best_config(x) == fast  # 64 programs of 2x2 tiles take ~30x as long on the interpreter
    assert any("wrong result" in r.getMessage() and "'sign': -1" in r.getMessage() for r in caplog.records)


def two_ways(x):
    """x * 2 as a product or a sum; `sign` = -1 computes a wrong answer."""
    algo = tl.register_tunable("algo", ("mul", "add"))
    sign = tl.register_tunable("sign", (1, -1))
    out = torch.empty_like(x)
    for t in tl.tile(x.shape):
        out[t] = (x[t] * 2 if algo == "mul" else x[t] + x[t]) * sign
    return out


@pytest.mark.parametrize("search", ["random", "pattern", "de", "default"])
def test_every_search_explores_tunables(search, evaluations):
    x = torch.randn(2, 8)  # few tiles at any block size: the interpreter runs each quickly
    tuned = tfn.tune(two_ways, effort="full", search=search, use_cache=False, verbose=False)
    torch.testing.assert_close(tuned(x), x * 2)
    tried = {dict(c.tunables)["algo"] for c in evaluations} | {dict(c.tunables)["sign"] for c in evaluations}
    assert tried == {"mul", "add", 1, -1}  # every value of both knobs was tried (sign=-1 and found wrong)
    assert dict(tuned.best_config(x).tunables)["sign"] == 1


def test_the_disk_cache_keeps_tunables(evaluations, cache_dir):
    x = torch.randn(16, 16)
    configs = [tfn.Config(tunables={"block": 2}), tfn.Config(tunables={"block": 16})]
    first = tfn.tune(tiled, configs=configs, verbose=False)
    first(x)
    count = len(evaluations)
    second = tfn.tune(tiled, configs=configs, verbose=False)
    torch.testing.assert_close(second(x), x * 2)
    assert len(evaluations) == count and second.best_config(x) == first.best_config(x) == configs[1]


def test_the_cache_key_follows_the_choices():
    def other_choices(x):
        block = tl.register_tunable("block", (4, 16), default=16)
        sign = tl.register_tunable("sign", (1, -1))
        out = torch.empty_like(x)
        for tm in tl.tile(x.shape[0], block_size=block):
            for tn in tl.tile(x.shape[1], block_size=block):
                out[tm, tn] = x[tm, tn] * 2 * sign
        return out

    other_choices.__name__ = "tiled"
    x = torch.randn(16, 16)
    program, again = tfn.make_ir(tiled)(x), tfn.make_ir(tiled)(x)
    assert str(program).replace("[2, 16]", "[4, 16]") == str(tfn.make_ir(other_choices)(x))  # only the choices differ
    assert cache.cache_key(program, x.device) == cache.cache_key(again, x.device)
    assert cache.cache_key(program, x.device) != cache.cache_key(tfn.make_ir(other_choices)(x), x.device)


# --- hooks for front ends ------------------------------------------------------------------
def test_set_config_runs_that_config_from_the_next_call(evaluations):
    x = torch.zeros(8)
    tuned = tfn.tune(by_block, effort="none", verbose=False)
    assert tuned.known_config(x) is None and tuned.signatures() == []
    torch.testing.assert_close(tuned(x), torch.full([8], 8.0))  # the default's block of 8
    assert tuned.known_config(x) == tuned.best_config(x) and len(tuned.signatures()) == 1
    tuned.set_config((x,), tfn.Config(block_sizes=[2]))
    torch.testing.assert_close(tuned(torch.zeros(8)), torch.full([8], 2.0))  # not the old fast path
    assert tuned.known_config(x) == tfn.Config(block_sizes=[2]) and len(tuned.signatures()) == 1


def test_pick_config_decides_a_new_signatures_config_once(evaluations):
    picked = []

    class Fixed(tfn.TunedFunction):
        def pick_config(self, args):
            picked.append(args[0].shape)
            return tfn.Config(block_sizes=[4])

    tuned = Fixed(tfn.jit(by_block), verbose=False)
    for _ in range(3):
        torch.testing.assert_close(tuned(torch.zeros(8)), torch.full([8], 4.0))
    tuned(torch.zeros(5))
    assert picked == [torch.Size([8]), torch.Size([5])] and evaluations == []


# --- faults: stale entries, an unwritable cache, candidates that all fail ---------------------
@pytest.mark.parametrize("stale", [
    tfn.Config(block_sizes=[4, 8], indexing=["pointer"] * 4),  # add has 3 loads and stores
    tfn.Config(block_sizes=[3, 5]),  # not powers of two
    tfn.Config(block_sizes=[4, 8], tunables={"gone": 1}),  # a knob the kernel does not register
])
def test_a_cached_config_that_no_longer_fits_is_retuned_with_one_warning(stale, evaluations, cache_dir, caplog):
    x, y = inputs()
    tfn.tune(add, effort="quick", verbose=False)(x, y)
    (path,) = cache_dir.glob("*.json")
    path.write_text(json.dumps({"config": stale.to_fields(), "seconds": 1e-3}))
    assert cache.load(path.stem) == stale  # it parses
    count = len(evaluations)
    with caplog.at_level(logging.WARNING, logger="tilefn.tune"):
        tuned = tfn.tune(add, effort="quick", verbose=False)
        for _ in range(3):
            torch.testing.assert_close(tuned(x, y), x + y)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "no longer fits" in warning and path.name in warning
    assert len(evaluations) > count  # tuned again, once
    assert cache.load(path.stem) == tuned.best_config(x, y) != stale  # the entry is overwritten
    count = len(evaluations)
    caplog.clear()
    tfn.tune(add, effort="quick", verbose=False)(x, y)
    assert len(evaluations) == count and caplog.records == []  # and used from then on


def test_an_unwritable_cache_keeps_the_tuned_config_in_memory(evaluations, tmp_path, monkeypatch, caplog):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path / "file" / "cache"))  # fails for root too
    x, y = inputs()
    tuned = tfn.tune(add, effort="quick", verbose=False)
    torch.testing.assert_close(tuned(x, y), x + y)
    count, best = len(evaluations), tuned.best_config(x, y)
    assert count > 1
    for _ in range(3):
        a, b = inputs()
        torch.testing.assert_close(tuned(a, b), a + b)
    assert len(evaluations) == count and tuned.best_config(x, y) == best  # no retuning
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]  # store and sources
    assert "working without it" in warning


def test_no_correct_candidate_says_why_each_kind_failed():
    x = torch.zeros(8)
    configs = [tfn.Config(block_sizes=[3]), tfn.Config(block_sizes=[2]), tfn.Config(block_sizes=[4])]
    tuned = tfn.tune(by_block, configs=configs, use_cache=False, verbose=False)  # 3: no power of two; 2, 4: wrong
    with pytest.raises(RuntimeError) as info:
        tuned(x)
    message = str(info.value)
    assert "1 raised TilefnError, first tfn.Config(block_sizes=[3]" in message and "power of two" in message
    assert "2 gave a wrong result" in message and "first tfn.Config(block_sizes=[2]" in message


def test_a_key_function_tunes_each_key_value_once(evaluations):
    x, y = inputs()
    seen = []

    def key(a, b):
        seen.append(1)
        return int(a.abs().sum() > 0)

    tuned = tfn.tune(add, effort="quick", verbose=False, key=key)
    for _ in range(2):
        torch.testing.assert_close(tuned(x, y), x + y)
    assert tuned.cache_info().tunings == 1
    zeros = torch.zeros_like(x)
    torch.testing.assert_close(tuned(zeros, y), y)  # the same signature, a new key value
    assert tuned.cache_info().tunings == 2 and len(seen) >= 3  # the key is asked on every call
    assert tuned.config_key((x, y)) != tuned.config_key((zeros, y))


def axpy(x, y, alpha):
    out = torch.empty_like(x)
    for t in tl.tile(out.shape):
        out[t] = x[t] * alpha + y[t]
    return out


def test_one_tuning_serves_every_value_of_a_float_argument(evaluations):
    x, y = inputs()
    tuned = tfn.tune(axpy, effort="quick", verbose=False)
    for alpha in (0.5, -2.0, 3.25):
        torch.testing.assert_close(tuned(x, y, alpha), x * alpha + y)
    assert tuned.cache_info()[1:] == (1, 1)  # one compile, one search
    assert tuned.known_config(x, y, 100.0) == tuned.best_config(x, y, 0.5)
    assert list(tuned.table()["cpu"]) == ["float32[8, 32]/(32, 1), float32[8, 32]/(32, 1), float"]
