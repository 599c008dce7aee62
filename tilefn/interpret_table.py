"""The interpreter's rule table: Primitive -> (ctx, eqn, *input values) -> output values (`tilefn.interpret`)."""
from __future__ import annotations

from .rule_table import RuleTable

RULES = RuleTable("interpreter rule")
rule = RULES.register
