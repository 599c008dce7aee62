"""`fwd, bwd = tfn.vjp_split(kernel)`: the derived backward split at its residuals (`residuals.py`).

`fwd(*args)` returns `(outputs, residuals)`: what the kernel returns, and a tuple of per-row tensors its
kernel also stored. `bwd(*args, residuals, *grad_outputs)` returns what `tfn.vjp(kernel)` returns, loading
the residuals instead of recomputing them. Where the backward is not split, `residuals` is `()` and `bwd`
recomputes, as `tfn.vjp`'s does. Both are jitted kernels (`tfn.interpret`, `tfn.tune`, `.lower` take them);
their Configs may differ in anything but the kernel's own tunables (which the forward is traced with).
"""
from __future__ import annotations

import attrs
import torch

from ..errors import ArgumentError
from ..jit import JitFunction, as_traceable
from ..trace.ir import Var
from ..trace.types import host_type_of
from .function import VjpFunction, signature_of
from .residuals import find_residuals, loading_backward, saving_forward

RESIDUALS = "residuals"  # the backward's parameter holding them


class SavingForward(JitFunction):
    """`fwd(*args) -> (outputs, residuals)`: the kernel storing its backward's residuals too."""

    def __init__(self, forward: JitFunction, config=None):
        super().__init__(signature_of(forward, 0, suffix="fwd")[0], config=config,
                         print_output_code=forward.print_output_code, dot_precision=forward.dot_precision)
        self.forward = forward
        self.captures = forward.captures

    def flat(self, args, kwargs) -> tuple:
        return self.forward.flat(args, kwargs)

    def _trace(self, flat, tunables, block_sizes):
        program, _ = self.forward.trace_and_bind(tuple(flat), {}, tunables, block_sizes)
        return saving_forward(program, find_residuals(program))


class ResidualBackward(VjpFunction):
    """`bwd(*args, residuals, *grad_outputs)`: the derived backward loading `residuals` (what `fwd` gave)."""

    def __init__(self, forward: JitFunction, outputs: int = 1, config=None):
        super().__init__(forward, outputs, config, before=(RESIDUALS,), suffix="bwd")

    def flat(self, args, kwargs) -> tuple:
        """The primals bound as the forward binds them, the residuals (a tuple), then the cotangents: the last
        positional arguments, or all given by name."""
        names = (RESIDUALS, *self.cotangent_names)
        kwargs = dict(kwargs)
        named = [kwargs.pop(n) for n in names if n in kwargs]
        if named and len(named) != len(names):
            raise ArgumentError(f"{self.__name__}(): give {', '.join(names)} all by name, or none", source=None)
        if not named and len(args) < len(names):
            raise ArgumentError(f"{self.__name__}(): takes the forward's arguments, then {', '.join(names)}; got "
                                f"{len(args)} positional argument(s)", source=None)
        primals, rest = (args, named) if named else (args[:len(args) - len(names)], args[len(args) - len(names):])
        if not isinstance(rest[0], (tuple, list)) or not all(isinstance(r, torch.Tensor) for r in rest[0]):
            raise ArgumentError(f"{self.__name__}(): `{RESIDUALS}` is the tuple of tensors the forward of "
                                f"tfn.vjp_split returned second; got {type(rest[0]).__name__}", source=None)
        return self.forward.flat(tuple(primals), kwargs) + (tuple(rest[0]),) + tuple(rest[1:])

    def _trace(self, flat, tunables, block_sizes):
        arity, copies = self.forward.arity, {}
        program, backward = self.transpose(flat[:arity], flat[arity + 1:], tunables, block_sizes, copies)
        found, given = find_residuals(program), flat[arity]
        _check_residuals(self.__name__, found, given)
        buffers = [Var(host_type_of(t)) for t in given]
        loaded = loading_backward(backward, copies, found, buffers)
        at = len(program.inputs)  # (the residuals' inputs and parameter go after the primals')
        paths = tuple((arity, ("item", i)) for i in range(len(buffers)))
        shifted = tuple((path[0] + 1, *path[1:]) for path in loaded.input_paths[at:])
        hints = {**loaded.hints, **{b: f"saved_{program.hints.get(r.var, f'residual{i}')}"
                                    for i, (r, b) in enumerate(zip(found, buffers))}}
        return attrs.evolve(loaded, name=f"{program.name}_bwd", inputs=(*loaded.inputs[:at], *buffers,
                                                                       *loaded.inputs[at:]),
                            params=(*loaded.params[:arity], RESIDUALS, *loaded.params[arity:]),
                            input_paths=(*loaded.input_paths[:at], *paths, *shifted), hints=hints)


def _check_residuals(name, found, given) -> None:
    """The residuals passed are as many, and of the shapes and dtypes, as the forward stores."""
    want = [(r.shape, r.var.type.dtype) for r in found]
    have = [(tuple(t.shape), t.dtype) for t in given]
    if want != have:
        raise ArgumentError(f"{name}(): `{RESIDUALS}` must be what this kernel's forward from tfn.vjp_split "
                            f"returned for these arguments: {len(want)} tensor(s) {want}; got {have}", source=None)


def vjp_split(kernel, outputs: int = 1, config=None, forward_config=None) -> tuple:
    """`(fwd, bwd)` for `kernel` returning `outputs` tensors: `fwd(*args) -> (outputs, residuals)`,
    `bwd(*args, residuals, *grad_outputs) -> one gradient per tensor argument` (None for integer ones),
    under `forward_config` and `config` (tfn.Configs; default: the heuristics)."""
    forward = as_traceable(kernel)
    return SavingForward(forward, forward_config), ResidualBackward(forward, outputs, config)
