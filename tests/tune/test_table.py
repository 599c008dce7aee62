"""Shipped config tables: a library tunes once, writes the table, and its users never tune."""
from __future__ import annotations

import threading

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.tune import benchmark, table

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


def scale_rows(x):
    out = torch.empty_like(x)
    for tm in tl.tile(x.shape[0]):
        out[tm, :] = x[tm, :] * 3.0
    return out


SMALL, LARGE = tfn.Config(block_sizes=[1], num_warps=1), tfn.Config(block_sizes=[8], num_warps=2)


def test_signature_text_names_dtypes_shapes_strides_and_values():
    x = torch.empty(4, 6, dtype=torch.bfloat16).t()
    assert table.signature_text((x, 1e-5, True, 3)) == "bfloat16[6, 4]/(1, 6), float, True, 3"  # (a float: by type)


def test_a_shipped_table_is_used_without_tuning(tmp_path, monkeypatch):
    monkeypatch.setenv("TILEFN_CACHE_DIR", str(tmp_path / "cache"))
    x = torch.randn(16, 32)
    tuned = tfn.tune(scale_rows, configs=[SMALL, LARGE], verbose=False)
    torch.testing.assert_close(tuned(x), x * 3.0)
    shipped = tuned.table()
    assert list(shipped) == ["cpu"] and list(shipped["cpu"]) == [table.signature_text((x,))]
    path = tmp_path / "configs.json"
    table.write(shipped, path)
    shipped["cpu"][table.signature_text((x,))] = SMALL.to_fields()  # whatever the library ships wins
    table.write(shipped, path)

    def no_benchmarking(*args, **kwargs):
        raise AssertionError("a shipped signature must not be tuned")

    monkeypatch.setattr(benchmark.Benchmarker, "__init__", no_benchmarking)
    user = tfn.tune(scale_rows, effort="full", table=str(path), use_cache=False, verbose=False)
    assert user.best_config(x) == SMALL
    torch.testing.assert_close(user(x), x * 3.0)
    with pytest.raises(AssertionError, match="shipped"):  # a signature the table lacks is tuned
        user(torch.randn(8, 32))


def test_concurrent_calls_from_threads_agree_with_eager():
    tuned = tfn.tune(scale_rows, configs=[SMALL, LARGE], use_cache=False, verbose=False)
    jitted = tfn.jit(scale_rows)
    inputs = [torch.randn(4 + i % 3, 16) for i in range(12)]
    results, errors = {}, []

    def work(i):
        try:
            fn = tuned if i % 2 else jitted
            results[i] = fn(inputs[i])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, x in enumerate(inputs):
        torch.testing.assert_close(results[i], x * 3.0)
