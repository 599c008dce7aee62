"""RuleTable: registration (one or several keys), duplicates refused, lookup, membership, iteration."""
import pytest

from tilefn.rule_table import RuleTable


def test_decorator_registers_every_key():
    table = RuleTable("test rule")

    @table.register("a", "b")
    def rule():
        return 1

    assert table["a"] is rule and table["b"] is rule
    assert "a" in table and "c" not in table
    assert list(table) == ["a", "b"] and len(table) == 2


def test_duplicate_registration_is_refused():
    table = RuleTable("test rule")
    table.add("a", lambda: 1)
    with pytest.raises(ValueError, match="test rule for 'a' registered twice"):
        table.register("b", "a")(lambda: 2)


def test_missing_key_is_a_clear_error():
    table = RuleTable("test rule")
    with pytest.raises(LookupError, match="no test rule for 'x'"):
        table["x"]
    assert table.get("x") is None and table.get("x", 3) == 3
