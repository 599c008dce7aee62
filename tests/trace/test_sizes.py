"""Symbolic sizes: arithmetic folds, source text, guards recorded while tracing, errors outside it."""
from __future__ import annotations

import pytest

from tilefn.trace import state as st
from tilefn.trace.sizes import Guard, SizeVar, bucket, cdiv, guards_of, hint, structure, value

S0, S1 = SizeVar("s0", 0, "size", 0, 37), SizeVar("s1", 0, "size", 1, 64, True)


def test_arithmetic_builds_source_text_and_folds_constants():
    assert str(cdiv(S0, 16)) == "((s0 + 15) // 16)" and hint(cdiv(S0, 16)) == 3
    assert S0 * 1 is S0 and S0 + 0 is S0 and (S0 - S0) == 0 and (S0 + 5) - S0 == 5
    assert str(2 * S0 * S1) == "((2 * s0) * s1)" and value(2 * S0 * S1, {"s0": 3, "s1": 4}) == 24
    assert cdiv(37, 16) == 3  # plain ints stay ints


def test_decisions_while_tracing_are_guards_with_the_users_line():
    with st.tracing() as state:
        assert (S0 > 32) is True and (S0 < S1) is True and int(S1) == 64
        assert (S0 - S0 == 0) is True  # decided without knowing s0: no guard
    guards = guards_of(state)
    assert [str(g).split("  (")[0] for g in guards] == ["s0 > 32", "s0 < s1", "s1 == 64"]
    assert guards[0].source.filename.endswith("test_sizes.py")
    assert guards[0].holds({"s0": 40, "s1": 64}) and not guards[0].holds({"s0": 3, "s1": 64})
    assert not guards[1].holds({"s0": 64, "s1": 64})


def test_a_decision_outside_tracing_is_an_error_not_a_guess():
    with pytest.raises(TypeError, match="compared outside tracing"):
        bool(S0 > 3)
    assert (S0 == 3) is False and (S0 != S1) is True  # equality outside tracing: structural (lowering's "is it 1?")


def test_guard_keys_compare_structurally_and_buckets_are_powers_of_two():
    assert Guard(S0 + 1, ">", 3, True).key() == Guard(S0 + 1, ">", 3, True).key()
    assert structure(S0 + 1) != structure(S1 + 1)
    assert [bucket(n) for n in (0, 1, 2, 3, 64, 65, 1000)] == [0, 1, 2, 4, 64, 128, 1024]
