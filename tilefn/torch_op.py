"""A kernel as a torch.library custom op: how kernels run inside torch.compile and under autograd.

A kernel call outside torch.compile, with no input needing a gradient, takes the kernel's own fast
path and never comes here. Otherwise the kernel calls `entry(its index, *args, **kwargs)`:

- `entry` is `allow_in_graph` for torch.compile: Dynamo records it as one node (it never traces
  tilefn's Python), and AOTAutograd and Inductor trace through it to the custom op below.
- Each kernel and *signature class* (which arguments are tensors, the static values of the rest,
  which tensors the kernel writes) is one op `tilefn::<kernel>_<n>` whose schema names its
  tensors (the written ones as mutated: `Tensor(a!)`) and its float arguments (`float eps`: runtime
  values, so a new value is the same op; floats inside lists or functions, and those of static
  parameters, are part of the signature class) and returns the new output tensors. Its fake
  implementation builds the outputs from the traced Program's host types; its real one runs the
  kernel. Outputs that are arguments (a kernel returning what it wrote) come back as the argument.
- Autograd: a kernel with `def_vjp(bwd)` differentiates through `bwd((args, outputs), grads)`;
  without one, outputs still come back (inference with `nn.Parameter` weights works) and a
  backward through them raises `MissingBackward` naming the kernel and how to add one. With
  `def_vjp(bwd, fwd=...)`, a call autograd records runs `fwd(*args) -> (outputs, residuals)` instead
  (its own op: the residuals are extra outputs, saved, not returned) and `bwd` gets `((args, outputs,
  residuals), grads)`; a tuned kernel (`tfn.tune`) runs itself, and `bwd` gets `(args, outputs)`.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import threading
import weakref

import torch

from .errors import ArgumentError, TilefnError
from .lower.aliasing import written_inputs
from .signature_cache import signature_key
from .trace.arguments import RUNTIME_ARG_TYPES, arg_key
from .trace.ir import Lit, Var
from .trace.types import PyScalarType

NAMESPACE = "tilefn"
_lock = threading.RLock()
_kernels: list = []  # op index -> weak reference to the kernel (an int is what the graph holds)
_ops: dict = {}  # (op index, signature class) -> (op, OpPlan)


class MissingBackward(TilefnError, RuntimeError):
    """A backward ran through a kernel that has no backward."""


def grad_needed(args, kwargs=None) -> bool:
    """True when autograd records this call: grad mode on and some tensor argument requires grad."""
    if not torch.is_grad_enabled():
        return False
    values = args if not kwargs else (*args, *kwargs.values())
    return any(isinstance(a, torch.Tensor) and a.requires_grad for a in values)


def register(kernel) -> int:
    """The op index of a new kernel (which has `run(*args)`: its call outside any custom op)."""
    with _lock:
        _kernels.append(weakref.ref(kernel))
        return len(_kernels) - 1


def _runtime_floats(values, static) -> list:
    """The positions of the top-level float arguments that are runtime values (the op's `float` inputs)."""
    return [i for i, v in enumerate(values) if isinstance(v, RUNTIME_ARG_TYPES) and i not in static]


class OpPlan:
    """What one signature class's op takes and gives: tensor, tensor-tuple (`Tensor[]`: vjp_split's
    residuals) and runtime float positions (`op_at`, in parameter order), statics, written tensors, and
    the output tree (each leaf: ("new", k), ("arg", position) or ("value", v))."""

    def __init__(self, names, values, program, static=()):
        self.names = names
        self.tensor_at = [i for i, v in enumerate(values) if isinstance(v, torch.Tensor)]
        self.list_at = [i for i, v in enumerate(values) if isinstance(v, tuple) and v
                        and all(isinstance(t, torch.Tensor) for t in v)]
        self.op_at = sorted(self.tensor_at + self.list_at + _runtime_floats(values, static))
        inputs = {}  # program input -> the parameter position holding it
        for var, path in zip(program.inputs, program.input_paths):
            if len(path) != 1 and not isinstance(var.type, PyScalarType) and \
                    not (len(path) == 2 and path[0] in self.list_at):  # (a float in a list: a static of the op)
                raise ArgumentError(f"{program.name}(): under torch.compile or autograd, tensors are passed as "
                                    f"arguments of their own, not inside `{names[path[0]]}` (a list, tuple or "
                                    "function)", source=None)
            inputs[var] = path[0]
        written = {inputs[v] for v in written_inputs(program)}
        self.written = [i for i in self.tensor_at if i in written]
        self.new_types: list = []
        self.tree = self._leaves(program.outputs, inputs)

    def _leaves(self, out, inputs):
        if isinstance(out, tuple):
            return tuple(self._leaves(o, inputs) for o in out)
        if isinstance(out, Var):
            if out in inputs:
                return ("arg", inputs[out])
            self.new_types.append(out.type)
            return ("new", len(self.new_types) - 1)
        return ("value", out.value if isinstance(out, Lit) else None)

    def schema(self) -> str:
        params = ", ".join(f"Tensor{'(a' + str(i) + '!)' if i in self.written else ''} {self.names[i]}"
                           if i in self.tensor_at else f"Tensor[] {self.names[i]}" if i in self.list_at
                           else f"float {self.names[i]}" for i in self.op_at)
        count = len(self.new_types)  # (a list return is refused with mutated arguments by functionalization)
        returns = "()" if count == 0 else "Tensor" if count == 1 else f"({', '.join(['Tensor'] * count)})"
        return f"({params}) -> {returns}"

    def op_args(self, values) -> list:
        """The op's arguments for a call's values (a tensor tuple as a list)."""
        return [list(values[i]) if i in self.list_at else values[i] for i in self.op_at]

    def returned(self, tensors: list):
        """The op's return value for its new output tensors (as the schema says: none, one, a tuple)."""
        return None if not tensors else tensors[0] if len(tensors) == 1 else tuple(tensors)

    def received(self, result) -> list:
        return [] if result is None else [result] if isinstance(result, torch.Tensor) else list(result)

    def assemble(self, tree, values, new):
        if isinstance(tree, tuple) and tree and isinstance(tree[0], str):
            kind, item = tree
            return new[item] if kind == "new" else values[item] if kind == "arg" else item
        return tuple(self.assemble(t, values, new) for t in tree)


def _bound(traced, args, kwargs):
    """The kernel's parameter names and the call's values for them (defaults applied)."""
    return list(traced.binder.names), list(traced.flat(args, kwargs or {}))


def _static_key(values, static) -> tuple:
    """The op's static values: runtime floats by type, floats inside structures and static parameters by value."""
    statics = [v if isinstance(v, RUNTIME_ARG_TYPES) and i not in static else arg_key(v, "an argument", static_floats=True)
               for i, v in enumerate(values) if not isinstance(v, torch.Tensor)]
    return signature_key(statics, {})


def _program(traced, names, values):
    """The traced Program for these values. Tracing reads only tensors' metadata, so torch.compile's
    fake tensors do; symbolic sizes (dynamic shapes) are specialised to their values (a guard: a new
    shape compiles anew, as tilefn compiles per shape) and stood for by fake tensors of those sizes."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils._python_dispatch import _disable_current_modes

    def concrete(v):
        if not isinstance(v, torch.Tensor) or all(isinstance(s, int) for s in (*v.shape, *v.stride())):
            return v
        shape, stride = [int(s) for s in v.shape], [int(s) for s in v.stride()]
        with _disable_current_modes(), FakeTensorMode(allow_non_fake_inputs=True):
            return torch.empty_strided(shape, stride, dtype=v.dtype, device=v.device)

    values = [tuple(map(concrete, v)) if isinstance(v, tuple) else concrete(v) for v in values]
    with _disable_current_modes():
        return traced.trace_and_bind(tuple(values), {})[0]


def _stand_ins(values, static) -> list:
    """torch.compile's symbolic floats (Dynamo's dynamic floats) as Python floats: a stand-in for a runtime
    float (the op takes its value at each call), the value itself (a guard) for a static parameter's."""
    return [(float(v) if i in static else 0.5) if isinstance(v, torch.SymFloat) else v for i, v in enumerate(values)]


def saving_forward(kernel):
    """The forward `def_vjp(bwd, fwd=...)` gave `kernel` (runs where autograd records a call), else None; None
    for a tuned kernel too: it runs itself, under its tuned Config, and its `bwd` gets no residuals."""
    return None if hasattr(kernel, "jitted") else getattr(kernel, "vjp_forward", None)


def _op_for(index, names, values, saving=False):
    """The op (and its plan) of kernel `index` for these values; `saving`: of its saving forward, which also
    returns the residuals."""
    kernel = _kernels[index]()
    traced = getattr(kernel, "jitted", kernel)
    runs = saving_forward(kernel) if saving else kernel  # (what the op runs; `traced` its Programs where not saving)
    tracer = runs if saving else traced
    values = _stand_ins(values, traced.static)
    key = (index, saving, tuple(isinstance(v, torch.Tensor) for v in values), _static_key(values, traced.static))
    made = _ops.get(key)
    if made is not None:
        return made
    with _lock:
        program = _program(tracer, names, values)  # (may learn parameters tl.specialize makes static)
        key = (index, saving, tuple(isinstance(v, torch.Tensor) for v in values), _static_key(values, traced.static))
        if key in _ops:
            return _ops[key]
        static = traced.static
        plan = OpPlan(names, values, program, static)
        statics = [None if i in plan.op_at else v for i, v in enumerate(values)]
        name = f"{traced.__name__}{'_saving' if saving else ''}_{index}_{len(_ops)}"

        def full(op_args):
            out = list(statics)
            for i, a in zip(plan.op_at, op_args):
                out[i] = tuple(a) if i in plan.list_at else a
            return out

        def run(*op_args):
            tensors = [a for a in op_args if isinstance(a, torch.Tensor)]
            result = runs.run(*full(op_args))
            leaves = _flat(result, plan.tree)
            with torch.no_grad():
                return plan.returned([t.clone() if any(t is a for a in tensors) else t for t in leaves])

        def fake(*op_args):  # the outputs' types for these shapes: the Program traced for them
            values = _stand_ins(full(op_args), static)
            types = OpPlan(names, values, _program(tracer, names, values), static).new_types
            tensors = [a for a in op_args if isinstance(a, torch.Tensor)]
            device = tensors[0].device if tensors else torch.device("cpu")
            return plan.returned([torch.empty_strided(t.shape, t.strides, dtype=t.dtype, device=device)
                                  for t in types])

        op = torch.library.custom_op(f"{NAMESPACE}::{name}", run, mutates_args=[plan.names[i] for i in plan.written],
                                     schema=plan.schema())
        op.register_fake(fake)
        if not plan.written:
            _register_autograd(op, kernel, plan, full, saving)
        _ops[key] = (op, plan)
        return op, plan


def _flat_tree(tree) -> list:
    """The plan tree's new-output leaves."""
    if isinstance(tree, tuple) and tree and isinstance(tree[0], str):
        return [tree] if tree[0] == "new" else []
    return [leaf for sub in tree for leaf in _flat_tree(sub)]


def _flat(result, tree) -> list:
    """The new-output tensors of a kernel's result, in the plan's order."""
    if isinstance(tree, tuple) and tree and isinstance(tree[0], str):
        return [result] if tree[0] == "new" else []
    return [t for r, sub in zip(result, tree) for t in _flat(r, sub)]


def _register_autograd(op, kernel, plan, full, saving=False):
    traced = getattr(kernel, "jitted", kernel)

    def setup_context(ctx, inputs, output):
        outputs = () if output is None else (output,) if isinstance(output, torch.Tensor) else tuple(output)
        ctx.save_for_backward(*[a for a in inputs if isinstance(a, torch.Tensor)], *outputs)
        if saving:  # (the residuals: the last new outputs)
            ctx.mark_non_differentiable(*outputs[len(_flat_tree(plan.tree[0])):])
        ctx.floats = [a for a in inputs if not isinstance(a, torch.Tensor)]  # runtime floats, in order
        ctx.count = len(inputs) - len(ctx.floats)

    def backward(ctx, *grads):
        bwd = getattr(traced, "vjp", None)
        if bwd is None:
            raise MissingBackward(
                f"a backward ran through the tilefn kernel {traced.__name__}(), which has no backward: give it "
                f"one with `{traced.__name__}.def_vjp(bwd)` (bwd((args, outputs), grad_outputs) -> one gradient "
                "per argument), or call it under torch.no_grad() / on detached inputs")
        saved, floats = ctx.saved_tensors, iter(ctx.floats)
        tensors = iter(saved[:ctx.count])
        args = full([next(tensors) if i in plan.tensor_at else next(floats) for i in plan.op_at])
        outs = saved[ctx.count:]
        outputs = plan.assemble(plan.tree, args, outs)
        grads_tree = plan.assemble(plan.tree, [None] * len(args), grads)
        if saving:  # (outputs: the saving forward's (outputs, residuals))
            result = bwd((tuple(args), *outputs), grads_tree[0])
        else:
            result = bwd((tuple(args), outputs), grads_tree)
        result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
        if len(result) != len(args):
            raise TilefnError(f"{traced.__name__}'s backward returned {len(result)} gradients for "
                              f"{len(args)} arguments; return one per argument (None for no gradient)")
        return tuple(result[i] if i in plan.tensor_at else None for i in plan.op_at)

    op.register_autograd(backward, setup_context=setup_context)


def op_of(kernel, *args, **kwargs):
    """The custom op a call of `kernel` with these arguments runs through, and the op's tensor
    arguments (for `torch.library.opcheck`, or to call the op directly)."""
    names, values = _bound(getattr(kernel, "jitted", kernel), args, kwargs)
    op, plan = _op_for(kernel._op_index, names, values)
    return op, tuple(plan.op_args(values))


def entry(index, *args, **kwargs):
    """A kernel call through its op. Dynamo puts this call in the graph as one node (it is
    `allow_in_graph`, registered when torch._dynamo loads: `_DynamoLoads`)."""
    kernel = _kernels[index]()
    names, values = _bound(getattr(kernel, "jitted", kernel), args, kwargs)
    saving = saving_forward(kernel) is not None and grad_needed(values)
    op, plan = _op_for(index, names, values, saving)
    if plan.written and grad_needed(values):
        raise ArgumentError(
            f"{kernel.__name__}() writes its argument `{names[plan.written[0]]}` and is called with inputs that "
            "require grad: autograd through a kernel that writes its arguments is not supported; return new "
            "tensors instead, or call it under torch.no_grad()", source=None)
    new = plan.received(op(*plan.op_args(values)))
    result = plan.assemble(plan.tree, values, new)
    return result[0] if saving else result  # (the saving forward's residuals stay with autograd)


def _allow_in_graph() -> None:
    import torch._dynamo

    torch._dynamo.allow_in_graph(entry)


class _DynamoLoads(importlib.abc.MetaPathFinder):
    """Registers `entry` with Dynamo right after torch._dynamo is imported. Importing it here would
    import Triton (and seconds of Dynamo) with tilefn, which `import tilefn` must not."""

    def find_spec(self, name, path, target=None):
        if name != "torch._dynamo":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _allow_in_graph()

        spec.loader.exec_module = exec_then_register
        return spec


if "torch._dynamo" in sys.modules:
    _allow_in_graph()
else:
    sys.meta_path.insert(0, _DynamoLoads())
