"""Primitive objects, and every primitive covered by each rule table."""
import copy
import pickle

import pytest

from tilefn.interpret import RULES as INTERPRETER_RULES
from tilefn.lower.rules import RULES as LOWERING_RULES
from tilefn.trace import primitives as p
from tilefn.trace.abstract_eval import ABSTRACT_EVAL
from tilefn.trace.primitives import P, Primitive

HOST_ONLY = {p.host_p}  # run by the launcher, never inside a kernel
LOWERED_BY_CODEGEN = {p.kernel_p, p.loop_p, p.cond_p, p.while_p}  # codegen writes the launch, loops and branches


def test_primitives_print_as_their_names_and_compare_by_identity():
    assert str(P["add"]) == "add" and f"{p.load_p}" == "load" and repr(p.dot_p) == "dot"
    assert P["load"] is p.load_p and p.load_p != Primitive("load")
    assert {p.load_p: 1}[P["load"]] == 1


def test_primitives_pickle_and_copy_to_themselves():
    assert pickle.loads(pickle.dumps(p.store_p)) is p.store_p
    assert copy.deepcopy(P["mul"]) is P["mul"]


def test_unknown_primitive_name_is_a_clear_error():
    with pytest.raises(LookupError, match="no primitive for 'nope'"):
        P["nope"]


def test_effectful_primitives():
    assert {prim for prim in (P[name] for name in P) if prim.effectful} == {
        p.load_p, p.store_p, p.loop_p, p.cond_p, p.while_p, p.kernel_p, p.host_p, *p.ATOMIC, *p.SIGNALS}
    assert p.WRITES == {p.store_p, *p.ATOMIC, p.signal_p, p.wait_p} and len(p.ATOMIC) == 8


@pytest.mark.parametrize("table, exempt", [(ABSTRACT_EVAL, set()), (INTERPRETER_RULES, set()),
                                           (LOWERING_RULES, HOST_ONLY | LOWERED_BY_CODEGEN)],
                         ids=["abstract_eval", "interpreter", "lowering"])
def test_every_primitive_has_a_rule(table, exempt):
    prims = {P[name] for name in P}
    assert {prim for prim in prims if prim not in table} == exempt
    assert set(table) <= prims
