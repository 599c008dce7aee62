"""Host equations: torch calls outside tile loops, recorded and evaluated on meta tensors."""
from __future__ import annotations

import operator

import attrs
import torch
from pyrsistent import pmap

from ..errors import TracingError, user_frame, user_source
from . import state as st
from .arguments import read, tensor_leaves
from .captures import Capture
from .ir import Eqn, Var
from .naming import op_name
from .primitives import host_p
from .proxies import HOOKS, HostTensor
from .pytree import tree_leaves, tree_map
from .dynamic import is_symbolic_type
from .host_shapes import specialise_all, symbolic_outputs
from .sizes import SizeExpr
from .scalars import RuntimeScalar
from .types import HostType, host_type_of


@attrs.frozen
class CapturedTensor:
    """Where a captured tensor is: the global or closure cell `capture`, at `path` inside its value (the
    value itself, or a list, tuple or dict holding it: what `captures.snapshot` keys by structure)."""

    capture: Capture
    path: tuple = ()

    def read(self) -> torch.Tensor:
        """The tensor there now (a KeyError or ValueError if the name is gone)."""
        return read(self.capture.read(), self.path)


def const_var(tensor: torch.Tensor) -> Var:
    """The program input standing for a tensor captured from a closure or global."""
    state = st.require()
    entry = state.consts.get(id(tensor))
    if entry is None:
        entry = (Var(host_type_of(tensor)), tensor)
        state.consts[id(tensor)] = entry
        reader = next((r for c in state.captures for r in _places(c, tensor)), None)
        if reader is not None:  # a global or closure cell: read by reference at every call
            state.captured[entry[0]] = reader
        name = _user_name_of(tensor)
        if name is not None:
            state.hints[entry[0]] = name
    return entry[0]


def _places(capture, tensor) -> list:
    """The CapturedTensors of `capture` that are `tensor` (none: an attribute of a captured object, say)."""
    try:
        value = capture.read()
    except (KeyError, ValueError):
        return []
    if value is tensor:
        return [CapturedTensor(capture)]
    if not isinstance(value, (list, tuple, dict)):
        return []
    return [CapturedTensor(capture, path) for path, _, leaf in tensor_leaves(value, capture.name)
            if leaf is tensor and all(kind in ("item", "key") for kind, _ in path)]


def _reads_sizes(args, kwargs) -> bool:
    return any(isinstance(x, SizeExpr) or (isinstance(x, HostTensor) and is_symbolic_type(x.ir_var.type))
               for x in tree_leaves((args, kwargs)))


def _type_of(x):
    return x.ir_var.type if isinstance(x, HostTensor) else None


def _user_name_of(value):
    """The name the user's code knows a captured value by (a local, closure or global), if any."""
    frame = user_frame()
    scopes = (frame.f_locals, frame.f_globals) if frame is not None else ()
    return next((name for scope in scopes for name, v in scope.items() if v is value), None)


def _device_of(args, kwargs) -> torch.device:
    if kwargs.get("device") is not None:
        return torch.device(kwargs["device"])
    for leaf in tree_leaves(args):
        if isinstance(leaf, HostTensor):
            return leaf.device
        if isinstance(leaf, torch.device):
            return leaf
    return torch.device("cpu")


@HOOKS.register("record_host")
def record_host(func, args, kwargs, prologue: bool = False):
    """Record `func(*args, **kwargs)` as a host equation; return proxies for its tensor results.
    With `prologue` it runs before the kernel wherever it is traced (a seed drawn inside a tile loop)."""
    state = st.require()
    args, kwargs = tree_map(_read_slice_bounds, (args, kwargs))

    def to_ir(x):
        if isinstance(x, (HostTensor, RuntimeScalar)):  # (a runtime float: its value at the call)
            return x.ir_var
        if isinstance(x, torch.Tensor):
            return const_var(x)
        return x

    def to_meta(x):
        if isinstance(x, HostTensor):
            return x.meta
        if isinstance(x, RuntimeScalar):  # a stand-in of its kind: metadata does not depend on the value
            return 0.5 if x.kind is float else True
        if isinstance(x, torch.Tensor):
            with torch._C.DisableTorchFunction():
                return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="meta")
        if isinstance(x, torch.device):
            return torch.device("meta")
        return x

    base_aligned = all(x.ir_var.type.aligned for x in tree_leaves((args, kwargs)) if isinstance(x, HostTensor))
    symbolic = symbolic_outputs(func, args, kwargs, _type_of, to_meta, _device_of(args, kwargs), base_aligned) \
        if state.dynamic and _reads_sizes(args, kwargs) else None
    if symbolic is not None:
        result, symbolic_types = symbolic
    else:
        if state.dynamic:
            specialise_all(args, kwargs, _type_of)  # (a shape the runs cannot explain: made static)
        meta_kwargs = tree_map(to_meta, kwargs)
        if "device" in meta_kwargs:
            meta_kwargs["device"] = "meta"
        try:
            with torch._C.DisableTorchFunction():
                result = func(*tree_map(lambda x: x.hint if isinstance(x, SizeExpr) else to_meta(x), args), **meta_kwargs)
        except NotImplementedError:  # no meta kernel: its result's shape depends on the values (nonzero)
            raise TracingError(f"host call torch.{op_name(func)} needs its tensors' values to know its result's "
                               "shape (a size that depends on the values, as torch.nonzero's), and host code does "
                               "not see them while tracing; compute it before calling the kernel and pass the "
                               "result as an argument") from None
        except RuntimeError as exc:
            if "cannot be called on meta tensors" not in str(exc):
                raise TracingError(f"host call torch.{op_name(func)} failed: {exc}") from None
            raise TracingError(f"host call torch.{op_name(func)} takes a tensor where it reads a number (a size or "
                               "a bound given as a tensor); read it as one first: int(t), t.tolist()") from None
        except Exception as exc:  # torch's own message says what is wrong with the call
            raise TracingError(f"host call torch.{op_name(func)} failed: {exc}") from None
    results = result if isinstance(result, (tuple, list)) else (result,)
    if result is not None and not any(isinstance(r, torch.Tensor) for r in results):
        return result  # metadata only (a size, a bool): static at trace time
    device = _device_of(args, kwargs)
    out_tensors = [r for r in results if isinstance(r, torch.Tensor)]
    if symbolic is not None:
        outputs = tuple(Var(t) for t in symbolic_types)
    else:
        outputs = tuple(Var(host_type_of(r, device, base_aligned)) for r in out_tensors)
    ir_args, ir_kwargs = tree_map(to_ir, args), tree_map(to_ir, kwargs)
    inputs = tuple(x for x in tree_leaves((ir_args, ir_kwargs)) if isinstance(x, Var))
    out_kind = "none" if result is None else ("tensor" if isinstance(result, torch.Tensor) else "tuple")
    params = pmap({"fn": func, "args": tuple(ir_args), "kwargs": pmap(ir_kwargs), "out_kind": out_kind,
                   "out_types": tuple(v.type for v in outputs)})
    eqn = Eqn(host_p, inputs, outputs, params, user_source(2))
    if prologue:
        state.host_eqns.append(eqn)
    else:
        state.emit(eqn)
    proxies = tuple(HostTensor(v, r, device) for v, r in zip(outputs, out_tensors))
    if out_kind == "tensor":
        return proxies[0]
    if out_kind == "tuple":
        return type(result)(proxies) if not hasattr(result, "_fields") else type(result)(*proxies)
    return None


def _read_slice_bounds(x):
    """A slice bounded by host tensors (`out[:n_tensor]`) as one bounded by their values (value reads)."""
    if not isinstance(x, slice) or not any(isinstance(b, HostTensor) for b in (x.start, x.stop, x.step)):
        return x
    return slice(*(operator.index(b) if isinstance(b, HostTensor) else b for b in (x.start, x.stop, x.step)))


def evaluate_host(eqn: Eqn, env: dict, sizes=None):
    """Run a host equation on real values (symbolic sizes: their values in `sizes`); returns the tuple of
    its output tensors."""
    look = lambda x: env[x] if isinstance(x, Var) else (x.evaluate(sizes) if isinstance(x, SizeExpr) else x)  # noqa: E731
    args = tree_map(look, list(eqn.params["args"]))
    kwargs = tree_map(look, dict(eqn.params["kwargs"]))
    result = eqn.params["fn"](*args, **kwargs)
    kind = eqn.params["out_kind"]
    if kind == "none":
        return ()
    if kind in ("tensor", "value"):
        return (result,)
    return tuple(r for r in result if isinstance(r, torch.Tensor))


def is_host_type(t) -> bool:
    return isinstance(t, HostType)
