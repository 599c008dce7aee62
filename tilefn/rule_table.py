"""`RuleTable`: a registry of rules keyed by primitive (or name), refusing duplicates."""
from __future__ import annotations

from typing import Any, Callable, Iterator


class RuleTable:
    """Rules keyed by primitives or names: one rule per key, a clear error for a missing one."""

    def __init__(self, what: str):
        self.what = what  # what a rule is, for messages: "lowering rule", "device op"...
        self._rules: dict = {}

    def register(self, *keys) -> Callable:
        """Decorator: register the function as the rule of every key in `keys`."""

        def wrap(rule):
            for key in keys:
                self.add(key, rule)
            return rule

        return wrap

    def add(self, key, rule) -> None:
        if key in self._rules:
            raise ValueError(f"{self.what} for {str(key)!r} registered twice")
        self._rules[key] = rule

    def __getitem__(self, key) -> Any:
        try:
            return self._rules[key]
        except KeyError:
            raise LookupError(f"no {self.what} for {str(key)!r}") from None

    def get(self, key, default=None) -> Any:
        return self._rules.get(key, default)

    def __contains__(self, key) -> bool:
        return key in self._rules

    def __iter__(self) -> Iterator:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __repr__(self) -> str:
        return f"RuleTable({self.what!r}, {len(self._rules)} rules)"
