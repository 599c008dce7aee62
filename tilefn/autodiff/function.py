"""`tfn.vjp(kernel)`: the backward kernel, a jitted function like any other; `tfn.autograd(kernel)`:
the kernel with that backward registered for torch autograd (through `def_vjp`)."""
from __future__ import annotations

import inspect

import torch

from ..errors import ArgumentError, ConfigError
from ..jit import DERIVED_BACKWARD, JitFunction, as_traceable
from ..trace.types import host_type_of
from .chunks import ROWS_KNOB
from .program import REDUCTION_KNOB, REDUCTIONS, vjp_program


def signature_of(forward: JitFunction, outputs: int, before=(), suffix: str = "vjp"):
    """A function standing for a derived function's signature, named `<forward>_<suffix>`: the forward's
    parameters, then the names `before`, then a cotangent per output (keyword-only after a parameter with
    a default, so a flat call still passes every value); and the cotangents' names."""
    params = list(forward.binder.signature.parameters.values())
    names = ["grad_output"] if outputs == 1 else [f"grad_output_{i}" for i in range(outputs)]
    kind = (inspect.Parameter.KEYWORD_ONLY
            if any(q.default is not inspect.Parameter.empty or q.kind is q.KEYWORD_ONLY for q in params)
            else inspect.Parameter.POSITIONAL_OR_KEYWORD)

    def backward(*args, **kwargs):  # (never called: VjpFunction traces the forward instead)
        raise NotImplementedError

    backward.__signature__ = inspect.Signature(params + [inspect.Parameter(n, kind) for n in (*before, *names)])
    backward.__name__ = backward.__qualname__ = f"{forward.__name__}_{suffix}"
    backward.__module__ = forward.__module__
    return backward, names


class VjpFunction(JitFunction):
    """`bwd(*primals, *cotangents) -> one gradient per tensor input of the forward` (None for integer
    ones), traced by transposing the forward's Program (`tilefn.autodiff.program`)."""

    def __init__(self, forward: JitFunction, outputs: int = 1, config=None, before=(), suffix: str = "vjp"):
        fn, self.cotangent_names = signature_of(forward, outputs, before, suffix)
        super().__init__(fn, config=config, print_output_code=forward.print_output_code,
                         dot_precision=forward.dot_precision)
        self.forward = forward
        self.captures = forward.captures  # (the forward's globals and cells are what its Programs fold in)

    def flat(self, args, kwargs) -> tuple:
        """The primals bound as the forward binds them, then the cotangents: the last positional arguments,
        or all given by name (grad_output, or grad_output_0, ...)."""
        kwargs = dict(kwargs)
        named = [kwargs.pop(n) for n in self.cotangent_names if n in kwargs]
        count = len(self.cotangent_names)
        if named and len(named) != count:
            raise ArgumentError(f"{self.__name__}(): give every cotangent by name, or none", source=None)
        if not named and len(args) < count:
            raise ArgumentError(f"{self.__name__}(): takes the forward's arguments, then {count} cotangent(s) "
                                f"({', '.join(self.cotangent_names)}); got {len(args)} positional argument(s)",
                                source=None)
        primals, cotangents = (args, named) if named else (args[:len(args) - count], args[len(args) - count:])
        return self.forward.flat(tuple(primals), kwargs) + tuple(cotangents)

    def _trace(self, flat, tunables, block_sizes):
        arity = self.forward.arity
        return self.transpose(flat[:arity], flat[arity:], tunables, block_sizes)[1]

    def transpose(self, primals, cotangents, tunables, block_sizes, copies=None) -> tuple:
        """(the forward traced for the primals, with its own tunables; its backward for these cotangents, with
        `vjp_reduction` and `vjp_rows_per_program`; `copies` as `vjp_program` fills it)."""
        values = dict(tunables)
        reduction, rows = values.pop(REDUCTION_KNOB, REDUCTIONS[0]), values.pop(ROWS_KNOB, None)
        if reduction not in REDUCTIONS:
            raise ConfigError(f"Config value {REDUCTION_KNOB}={reduction!r} is not one of {list(REDUCTIONS)}",
                              source=None)
        program, _ = self.forward.trace_and_bind(tuple(primals), {}, tuple(sorted(values.items())), block_sizes)
        types = [host_type_of(c) if isinstance(c, torch.Tensor) else c for c in cotangents]
        return program, vjp_program(program, types, self.cotangent_names, reduction, block_sizes or (), rows, copies)


def vjp(kernel, outputs: int = 1, config=None) -> VjpFunction:
    """The backward of `kernel` (a `tfn.jit` kernel or a plain kernel function) returning `outputs` tensors:
    `bwd(*args, *grad_outputs)` gives one gradient per tensor argument, computed by one derived kernel
    (under `config`, a `tfn.Config` of the backward's knobs, as `tfn.jit(config=...)`; default: the heuristics)."""
    return VjpFunction(as_traceable(kernel), outputs, config)


def autograd(kernel, outputs: int = 1) -> JitFunction:
    """`kernel` (made a `tfn.jit` kernel) with its derived backward as its autograd formula: outputs of calls
    on tensors that require grad carry a grad_fn. Such a call runs `tfn.vjp_split`'s forward, which also
    stores the backward's per-row residuals (saved for the backward, which loads them); where there are
    none, the backward recomputes (`tfn.vjp`). Returns the kernel."""
    from .split import vjp_split  # (split imports this module)

    forward = as_traceable(kernel)
    backward = vjp(forward, outputs)
    saving, from_residuals = vjp_split(forward, outputs)

    def bwd(saved, grad_outputs):
        args, results, *saving = saved  # (no residuals through a tuned kernel: torch_op.saving_forward)
        residuals = saving[0] if saving else ()
        grads = _leaves(grad_outputs)
        outs = _leaves(results)
        cts = [g if g is not None else torch.zeros_like(o) for g, o in zip(grads, outs)]
        program, _ = forward.trace_and_bind(tuple(args), {})
        # (under torch.compile: its own custom op)
        per_input = from_residuals(*args, residuals, *cts) if residuals else backward(*args, *cts)
        per_arg = [None] * len(args)
        for path, grad in zip(program.input_paths, per_input):
            per_arg[path[0]] = grad
        return tuple(per_arg)

    forward.def_vjp(bwd, fwd=saving)
    forward.derived_vjp = backward
    forward.derived_split = (saving, from_residuals)
    return forward


def _leaves(tree) -> list:
    if isinstance(tree, (tuple, list)):
        return [x for t in tree for x in _leaves(t)]
    return [tree]


DERIVED_BACKWARD.add("autograd", autograd)
