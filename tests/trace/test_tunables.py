"""`tl.register_tunable` while tracing: the Config's value (or the default) reaches the Program,
the Program records the knobs, and misuse is a clear error naming the user's line."""
from __future__ import annotations

import inspect

import pytest
import torch

import tilefn as tfn
from tilefn import lang as tl
from tilefn.errors import ConfigError, TracingError
from tilefn.trace.ir import Tunable
from tilefn.trace.tracer import trace


def scale(x):
    factor = tl.register_tunable("factor", (1, 2, 3))
    block = tl.register_tunable("block", (8, 16, 32), default=16)
    out = torch.empty_like(x)
    for t in tl.tile(x.shape[0], block_size=block):
        out[t] = x[t] * factor
    return out


def traced(fn, *args, tunables=()):
    return trace(fn, args, {}, tuple(sorted(dict(tunables).items())))


def mul_constant(program) -> object:
    """The literal `x * factor` multiplies by, read off the kernel's `mul` equation."""
    text = str(program)
    line = next(line for line in text.splitlines() if "= mul " in line)
    return line.rsplit(", ", 1)[1]


def test_defaults_reach_the_program_and_are_recorded():
    program = traced(scale, torch.randn(40))
    assert program.tunables == (Tunable("factor", (1, 2, 3), 1, 1), Tunable("block", (8, 16, 32), 16, 16))
    assert mul_constant(program) == "1"
    assert program.blocks[0].fixed == 16


def test_config_values_reach_the_program():
    program = traced(scale, torch.randn(40), tunables={"factor": 3, "block": 32})
    assert [t.value for t in program.tunables] == [3, 32]
    assert mul_constant(program) == "3"
    assert program.blocks[0].fixed == 32


def test_a_partial_config_keeps_the_other_defaults():
    program = traced(scale, torch.randn(40), tunables={"factor": 2})
    assert [(t.name, t.value) for t in program.tunables] == [("factor", 2), ("block", 16)]


def test_printer_shows_the_knobs():
    text = str(traced(scale, torch.randn(40), tunables={"factor": 2}))
    assert "# tunable factor = 2 of [1, 2, 3], default 1" in text
    assert "# tunable block = 16 of [8, 16, 32], default 16" in text
    assert "tunable" not in str(tfn.make_ir(lambda x: x)(torch.randn(4)))


def test_the_value_is_a_plain_python_value_that_can_pick_an_algorithm():
    def pick(x):
        algo = tl.register_tunable("algo", ("mul", "add"))
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = x[t] * 2 if algo == "mul" else x[t] + x[t]
        return out

    assert "= mul " in str(traced(pick, torch.randn(8)))
    assert "= add " in str(traced(pick, torch.randn(8), tunables={"algo": "add"}))


def test_registering_the_same_knob_twice_with_the_same_choices_is_fine():
    def twice(x):
        a = tl.register_tunable("n", (1, 2))
        b = tl.register_tunable("n", [1, 2])
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = x[t] * (a + b)
        return out

    program = traced(twice, torch.randn(8), tunables={"n": 2})
    assert program.tunables == (Tunable("n", (1, 2), 1, 2),) and mul_constant(program) == "4"


def _line_of(fn, text: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if text in line)


def _kernel(name="k", choices=(1, 2), again=None, default=None):
    def kernel(x):
        tl.register_tunable(name, choices, default=default)
        if again is not None:
            tl.register_tunable(name, again)
        out = torch.empty_like(x)
        for t in tl.tile(x.shape[0]):
            out[t] = x[t]
        return out

    return kernel


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "not a name"}, "must be an identifier"),
    ({"name": 3}, "must be an identifier"),
    ({"choices": ()}, "must not be empty"),
    ({"choices": 4}, "a sequence of values"),
    ({"choices": "ab"}, "a sequence of values"),
    ({"choices": (1, None)}, "ints, floats, bools or strs"),
    ({"choices": (1, 1)}, "must be distinct"),
    ({"default": 5}, "the default is not one of"),
    ({"again": (1, 2, 3)}, "registered twice with different choices"),
    ({"again": (1.0, 2.0)}, "registered twice with different choices"),
])
def test_misuse_is_a_tracing_error_naming_the_call(kwargs, match):
    kernel = _kernel(**kwargs)
    with pytest.raises(TracingError, match=match) as info:
        traced(kernel, torch.randn(8))
    assert info.value.source.lineno in (_line_of(kernel, "register_tunable(name, choices"),
                                        _line_of(kernel, "register_tunable(name, again"))


def test_a_config_value_outside_the_choices_is_a_config_error():
    with pytest.raises(ConfigError, match=r"factor=5 is not one of \[1, 2, 3\]") as info:
        traced(scale, torch.randn(8), tunables={"factor": 5})
    assert info.value.source.lineno == _line_of(scale, '"factor"')
    with pytest.raises(ConfigError, match="factor=True is not one of"):  # a bool is not the int 1
        traced(scale, torch.randn(8), tunables={"factor": True})


def test_a_config_key_the_kernel_never_registers_is_a_config_error():
    with pytest.raises(ConfigError, match=r"tunables \['splitk'\] are not registered by scale") as info:
        traced(scale, torch.randn(8), tunables={"splitk": 2})
    assert info.value.source.lineno == scale.__code__.co_firstlineno


def test_outside_a_kernel_it_is_an_error():
    with pytest.raises(TracingError, match="inside a kernel"):
        tl.register_tunable("n", (1, 2))
