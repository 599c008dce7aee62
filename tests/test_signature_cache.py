"""Signature keys, the last-call guard and the signature -> value store that jit and tune share."""
import threading

import pytest
import torch

from tilefn.errors import ArgumentError
from tilefn.signature_cache import SignatureCache, last_call_guard, signature_key


def test_key_covers_tensor_metadata_static_values_and_keywords():
    x = torch.randn(32)
    assert signature_key((x, 2.0), {}) == signature_key((torch.randn(32), 2.0), {})
    assert signature_key((x, 2.0), {}) == signature_key((x, 3.0), {})  # a float is a runtime value: its type counts
    assert signature_key((x, 2), {}) != signature_key((x, 3), {})  # an int is static
    assert signature_key((x, 2.0), {}) != signature_key((x, 2), {})
    assert signature_key((x,), {}) != signature_key((x.double(),), {})
    assert signature_key((x,), {}) != signature_key((torch.randn(64)[::2],), {})
    assert signature_key((x,), {"factor": 2.0}) != signature_key((x, 2.0), {})
    with pytest.raises(ArgumentError, match="set"):
        signature_key(({1.0},), {})


def test_key_of_lists_and_tuples_is_their_structure_values_and_tensor_metadata():
    x = torch.randn(32)
    assert signature_key(([1, (2.0, None)],), {}) == signature_key(([1, (2.0, None)],), {})
    assert signature_key(([1, (2.0, None)],), {}) == signature_key(([1, (3.0, None)],), {})
    for other in ([1, (2.0,)], [1, [2.0, None]], (1, (2.0, None)), [True, (2.0, None)], [1, (2, None)], [2, (2.0, None)]):
        assert signature_key(([1, (2.0, None)],), {}) != signature_key((other,), {})
    assert signature_key(((x, 1),), {}) == signature_key(((torch.randn(32), 1),), {})
    assert signature_key(((x, 1),), {}) != signature_key(((x.double(), 1),), {})
    assert signature_key(((x, 1),), {}) != signature_key(((torch.randn(33)[1:], 1),), {})  # alignment
    with pytest.raises(ArgumentError, match=r"an argument holds at \[1\] a set"):
        signature_key(([1, {2}],), {})


def test_guard_accepts_the_same_signature_only():
    x = torch.randn(32)
    guard = last_call_guard((x, 2.0))
    assert guard((torch.randn(32), 2.0))
    assert not guard((torch.randn(33), 2.0))
    assert not guard((torch.randn(32, dtype=torch.float64), 2.0))
    assert not guard((torch.randn(64)[::2], 2.0))
    assert guard((torch.randn(32), 3.0))  # a float is a runtime value
    assert not guard((torch.randn(32), 2))  # an int is another static signature
    assert not last_call_guard((x, 2.0), static=(1,))((x, 3.0))  # unless static (static_argnames)
    assert last_call_guard((x, 2.0), static=(1,))((x, 2.0))
    assert not guard((torch.randn(32),))
    assert not guard(([1.0] * 32, 2.0))


def test_guard_compares_lists_and_tuples_by_structure_and_type():
    x = torch.randn(32)
    guard = last_call_guard((x, (2, [1.0])))
    assert guard((torch.randn(32), (2, [1.0])))
    assert guard((x, (2, [1.5])))  # floats inside are runtime values
    for other in ((3, [1.0]), (True, [1.0]), (2, (1.0,)), [2, [1.0]], (2, [1.0, 1.0]), (2, [1])):
        assert not guard((x, other))
    tensors = last_call_guard(((x, x),))
    assert tensors(((torch.randn(32), torch.randn(32)),))
    assert not tensors(((torch.randn(32), torch.randn(31)),))


def test_guard_checks_the_alignment_it_was_compiled_for():
    aligned = torch.randn(33)[:32]
    guard = last_call_guard((aligned,))
    assert not guard((torch.randn(33)[1:],))  # 4 bytes off a 16-byte boundary
    unaligned_guard = last_call_guard((torch.randn(33)[1:],))
    assert unaligned_guard((aligned,))  # code that assumes nothing runs on aligned data too
    both = last_call_guard((aligned, aligned))
    assert both((torch.randn(32), torch.randn(32)))
    assert not both((torch.randn(32), torch.randn(33)[1:]))  # either tensor off its boundary fails the check


def test_values_are_made_once_per_key():
    cache, made = SignatureCache(), []
    assert cache.get_or_make("a", lambda: made.append("a") or 1) == 1
    assert cache.get_or_make("a", lambda: made.append("again") or 2) == 1
    assert cache.get_or_make("b", lambda: made.append("b") or 3) == 3
    assert made == ["a", "b"] and cache.keys() == ["a", "b"] and len(cache) == 2
    assert "a" in cache and cache.get("a") == 1 and cache.get("c") is None


def test_concurrent_first_calls_make_the_value_once():
    cache, made, start = SignatureCache(), [], threading.Barrier(8)

    def make():
        made.append(1)
        return object()

    def worker(out):
        start.wait()
        out.append(cache.get_or_make("k", make))

    results: list = []
    threads = [threading.Thread(target=worker, args=(results,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len({id(r) for r in results}) == 1


def test_a_failed_make_stores_nothing():
    cache = SignatureCache()
    with pytest.raises(ZeroDivisionError):
        cache.get_or_make("k", lambda: 1 / 0)
    assert "k" not in cache and cache.get_or_make("k", lambda: 5) == 5


def test_remember_sets_the_fast_path_and_set_or_discard_clear_it():
    cache, x = SignatureCache(), torch.randn(8)
    cache.remember((x,), "run")
    guard, value = cache.last
    assert value == "run" and guard((torch.randn(8),)) and not guard((torch.randn(9),))
    cache.set("other", "new")
    assert cache.last is None and cache.get("other") == "new"
    cache.remember((x,), "run")
    cache.discard("other")
    assert cache.last is None and "other" not in cache
    cache.discard("missing")  # nothing to forget: no error
