"""Host code around a differentiated kernel: gradient buffers, and pulling cotangents back through the
torch calls before the kernel (views of the inputs) and after it (a mean of per-row losses, a view of
the output), which must be linear in what flows through them; torch's own autograd pulls them back."""
from __future__ import annotations

import torch
from pyrsistent import pmap

from ..errors import UnsupportedOp
from ..trace import primitives as p
from ..trace.host import evaluate_host
from ..trace.ir import Eqn, Var
from ..trace.naming import op_name
from ..trace.types import HostType

LINEAR = frozenset({  # host calls linear in their tensor argument: views, layout, dtype casts, sums
    "view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "permute", "transpose", "t", "movedim",
    "expand", "contiguous", "clone", "to", "float", "double", "half", "bfloat16", "mean", "sum", "neg",
    "view_as", "reshape_as", "narrow", "select", "__getitem__", "type_as"})
SCALED = frozenset({"mul", "div", "__mul__", "__rmul__", "__truediv__", "true_divide"})  # by a number only
VALUE_FREE = ("empty", "zeros", "ones", "full", "new_", "rand", "arange")  # results that read no values


def reads_values(eqn: Eqn) -> bool:
    """Whether a host equation's results depend on its tensor inputs' values (not only their metadata)."""
    return not op_name(eqn.params["fn"]).startswith(VALUE_FREE)


def check_linear(eqn: Eqn, flowing: set) -> None:
    """Refuse a host call on a differentiated tensor that is not linear in it."""
    name = op_name(eqn.params["fn"])
    tensors = [x for x in eqn.inputs if isinstance(x, Var)]
    if name in LINEAR or (name in SCALED and len(tensors) == 1):
        return
    if not any(x in flowing for x in tensors):
        return
    raise UnsupportedOp(f"tfn.vjp: the host call `{name}` on a differentiated tensor is outside the tile "
                        f"loops and not one of the linear calls tfn.vjp pulls back ({', '.join(sorted(LINEAR))}, "
                        "and scaling by a number); compute it inside the kernel, or outside the kernel's call",
                        source=eqn.source)


def contiguous(shape, dtype, device) -> HostType:
    strides, step = [], 1
    for size in reversed(shape):
        strides.insert(0, step)
        step *= max(size, 1)
    return HostType(tuple(shape), tuple(strides), dtype, device, True)


def buffer_eqn(like: HostType, dtype, out: Var | None = None, zeroed: bool = True) -> Eqn:
    """A host equation allocating a contiguous tensor of `like`'s shape (a gradient buffer), zero-filled
    unless the kernel writes every element (`zeroed=False`)."""
    out = out if out is not None else Var(contiguous(like.shape, dtype, like.device))
    params = {"fn": torch.zeros if zeroed else torch.empty, "args": (list(like.shape),), "kwargs": pmap({"dtype": dtype, "device": like.device}),
              "out_kind": "tensor", "out_types": (out.type,)}
    return Eqn(p.host_p, (), (out,), params)


def host_call(fn, args, out_type: HostType) -> Eqn:
    """A host equation `fn(*args)` giving one contiguous tensor of `out_type`'s shape and dtype."""
    out = Var(contiguous(out_type.shape, out_type.dtype, out_type.device))
    params = {"fn": fn, "args": tuple(args), "kwargs": pmap(), "out_kind": "tensor", "out_types": (out.type,)}
    return Eqn(p.host_p, tuple(a for a in args if isinstance(a, Var)), (out,), params)


class Pullback:
    """`fn(*sources, *cotangents of targets) -> cotangents of sources` through host equations `eqns`, by
    torch autograd; `at_zeros`: the sources are not passed, zeros of their types stand for them (linear code)."""

    printed_as_call = True  # the printer writes `name(args)`

    def __init__(self, name: str, eqns, sources, targets, at_zeros: bool):
        self.__name__ = name
        self.eqns, self.sources, self.targets, self.at_zeros = tuple(eqns), tuple(sources), tuple(targets), at_zeros

    def __call__(self, *values):
        if self.at_zeros:
            device = values[0].device
            given = [torch.zeros(s.type.shape, dtype=s.type.dtype, device=device) for s in self.sources]
            cts = values
        else:
            given, cts = values[:len(self.sources)], values[len(self.sources):]
        with torch.enable_grad():
            if not torch.ones((), requires_grad=True).mul(2).requires_grad:  # (a CPU probe: no launch)
                raise UnsupportedOp(f"tfn.vjp: {self.__name__} runs where torch autograd records nothing (a derived "
                                    "backward called on tensors that require grad runs as a custom op, below "
                                    "autograd); pass detached inputs (x.detach())", source=None)
            leaves = [v.detach().requires_grad_(True) for v in given]
            env = dict(zip(self.sources, leaves))
            for eqn in self.eqns:
                if all(x in env for x in eqn.inputs if isinstance(x, Var)):
                    env.update(zip(eqn.outputs, evaluate_host(eqn, env)))
            pairs = [(env[t], c) for t, c in zip(self.targets, cts) if t in env and env[t].requires_grad]
            grads = torch.autograd.grad([o for o, _ in pairs], leaves, [c.to(o.dtype) for o, c in pairs],
                                        allow_unused=True) if pairs else [None] * len(leaves)
        return tuple((torch.zeros_like(leaf) if g is None else g).detach().contiguous() for leaf, g in zip(leaves, grads))


def pullback_eqn(name, eqns, sources, targets, inputs, at_zeros: bool, source=None) -> Eqn:
    """A host equation running a `Pullback`; its outputs: one contiguous cotangent per source."""
    outputs = tuple(Var(contiguous(s.type.shape, s.type.dtype, s.type.device)) for s in sources)
    fn = Pullback(name, eqns, sources, targets, at_zeros)
    params = {"fn": fn, "args": tuple(inputs), "kwargs": pmap(), "out_kind": "tuple",
              "out_types": tuple(v.type for v in outputs)}
    return Eqn(p.host_p, tuple(inputs), outputs, params, source)
