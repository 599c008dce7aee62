"""Trace a user's kernel function into a Program."""
from __future__ import annotations

import torch

from . import branches
from .arguments import arg_key, functions_in, replace, tensor_leaves
from .branch_source import branching
from .binding import Binder
from .captures import captures_of
from ..errors import ArgumentError, TilefnError, TracingError
from . import state as st
from .ir import Eqn, Lit, Program, Region, Var, walk_eqns
from .naming import op_name
from .primitives import ATOMIC, WRITES, kernel_p, load_p, store_p
from .proxies import DeviceValue, HostTensor, Tile, TraceMode
from .queries import phase_of
from .tunables import check_claimed
from .naming import kernel_name
from .dynamic import symbolic_host_type
from .sizes import guards_of
from .scalars import RuntimeScalar, is_runtime_scalar
from .types import HostType, PyScalarType, host_type_of

def _proxy_args(fn, args, kwargs, static=()):
    """Bind the call's arguments; every tensor in them (in a list, a tuple, a function's captures)
    becomes a HostTensor proxy of a program input, every float (but in the `static` parameter
    positions) a RuntimeScalar of one, the rest stays static."""
    binder = Binder(fn)
    flat = binder.flat(args, kwargs)
    state, values, inputs, paths, devices = st.require(), [], [], [], set()
    state.flat = flat
    for index, (name, value) in enumerate(zip(binder.names, flat)):
        arg_key(value, f"argument `{name}` of {binder.name}()")  # refuses what a kernel cannot take, naming it
        proxies = {}
        for path, hint, leaf in tensor_leaves(value, name, floats=index not in static):
            if isinstance(leaf, torch.Tensor):
                var = Var(symbolic_host_type(leaf, len(inputs)) if state.dynamic else host_type_of(leaf))
                with torch._C.DisableTorchFunction():
                    meta = torch.empty_strided(leaf.shape, leaf.stride(), dtype=leaf.dtype, device="meta")
                proxies[path] = HostTensor(var, meta, leaf.device)
                state.arguments[var] = (index, *path)
                devices.add(leaf.device)
            else:  # a float: a runtime scalar (tilefn.trace.scalars)
                var = Var(PyScalarType(float))
                proxies[path] = RuntimeScalar(var, frozenset({index}), hint)
            inputs.append(var)
            paths.append((index, *path))
            state.hints[var] = hint
        state.captures += tuple(c for f in functions_in(value) for c in captures_of(f) if isinstance(c.scope, dict))
        values.append(replace(value, proxies))
    if len(devices) > 1:
        raise ArgumentError(f"tensor arguments of {binder.name}() are on several devices: "
                            f"{sorted(map(str, devices))}", source=None)
    return binder.call_args(tuple(values)), inputs, paths, binder.names


def _outputs(result):
    if isinstance(result, HostTensor):
        return result.ir_var
    if isinstance(result, RuntimeScalar):
        raise TracingError("the kernel returns a runtime float (an argument, or host arithmetic on one); "
                           "return tensors, or make the argument static (static_argnames= or tl.specialize)")
    if isinstance(result, (tuple, list)):
        return tuple(_outputs(r) for r in result)
    if result is None or isinstance(result, (bool, int, float)):
        return None if result is None else Lit(result, PyScalarType(type(result)))
    if isinstance(result, (DeviceValue, Tile)):
        raise TracingError("the kernel returns a device value; store it into a tensor and return that")
    raise TracingError(f"the kernel returns a {type(result).__name__}; return tensors, or a tuple of them")


def _check_loops_independent(loops) -> None:
    """Top-level loops of one phase are sections of one launch and run concurrently: none may read what
    another writes (atomics of several loops on one tensor commute; an atomic on what another loop stores
    does not). A tl.barrier() between loops starts a new phase, ordered after the earlier ones."""
    written, stored, phase = set(), set(), 0
    for loop in loops:
        if phase_of(loop) != phase:
            written, stored, phase = set(), set(), phase_of(loop)
        inner = list(walk_eqns(loop.params["region"].eqns))
        for eqn in inner:
            if (eqn.prim is load_p and eqn.inputs[0] in written) or (eqn.prim in ATOMIC and eqn.inputs[0] in stored):
                raise TracingError(
                    "this tile loop reads a tensor that an earlier top-level tile loop of the same kernel "
                    "writes; all top-level loops run as one launch, concurrently. Put tl.barrier() between "
                    "the two loops (or split the kernel in two) to order them", source=eqn.source)
        written |= {e.inputs[0] for e in inner if e.prim in WRITES}
        stored |= {e.inputs[0] for e in inner if e.prim is store_p}


def _kernel_eqn(state) -> Eqn:
    _check_loops_independent(state.kernel.eqns)
    region = branches.without_name_copies(Region((), state.kernel.eqns), state.name_copies)
    operands = []
    for eqn in walk_eqns(region.eqns):
        for x in eqn.inputs:
            if isinstance(x, Var) and (isinstance(x.type, HostType) or is_runtime_scalar(x)) and x not in operands:
                operands.append(x)
    _check_one_device(state, [v for v in operands if isinstance(v.type, HostType)])
    return Eqn(kernel_p, operands, (), {"region": region})


def _check_one_device(state, operands) -> None:
    """Every tensor the kernel touches is on one device: a host allocation that forgot `device=` would
    hand the GPU a CPU address (an illegal memory access, or garbage), so it is refused, naming it."""
    devices = {str(v.type.device) for v in operands}
    if len(devices) <= 1:
        return
    main = max(devices, key=lambda d: sum(str(v.type.device) == d for v in operands))
    for eqn in [*state.host_eqns, *(e for _, e in state.host_after_loop)]:
        odd = [v for v in eqn.outputs if v in operands and str(v.type.device) != main]
        if odd:
            raise TracingError(f"torch.{op_name(eqn.params['fn'])}(...) makes a tensor on {odd[0].type.device}, "
                               f"but the kernel's other tensors are on {main}; pass device= (e.g. "
                               "`device=x.device`) so every tensor a tile loop touches is on one device",
                               source=eqn.source)
    raise TracingError(f"the tensors this kernel's tile loops touch are on several devices: {sorted(devices)} "
                       "(a captured global tensor, say); move them to one device")


def _split_host_after_loops(state, kernel_writes):
    """Host code between top-level loops runs before the kernel; code after the last, after it."""
    before, after = [], []
    for loops_closed, eqn in state.host_after_loop:
        if loops_closed == state.loops_closed:
            after.append(eqn)
            continue
        if set(eqn.inputs) & kernel_writes and eqn.outputs and not _is_view(eqn):
            raise TracingError(
                f"host code between two tile loops (torch.{op_name(eqn.params['fn'])}) reads a tensor "
                "the kernel writes; all tile loops of a kernel run as one launch. Split the kernel in two",
                source=eqn.source)
        before.append(eqn)
    return before, after


def _is_view(eqn) -> bool:
    return op_name(eqn.params["fn"]) in {"view", "reshape", "transpose", "permute", "t", "unsqueeze",
                                          "squeeze", "expand", "flatten", "__getitem__", "view_as"}


def trace(fn, args, kwargs, tunables=(), dot_precision: str = "ieee", block_sizes=(), static=(),
          dynamic: bool = False) -> Program:
    """Run `fn` on proxies and return the Program it builds (`register_tunable` reads `tunables`;
    float32 dots multiply at `dot_precision` unless they say; host code reading a block size gets its
    entry of `block_sizes`, `tilefn.trace.host_blocks`; floats of the `static` parameter positions stay
    Python numbers, the others are runtime scalars; `dynamic`: tensor sizes and strides symbolic,
    `tilefn.trace.dynamic`, with the facts decided on them in `Program.guards`)."""
    with st.tracing(tunables, dot_precision, block_sizes) as state, TraceMode():
        state.dynamic = dynamic
        state.captures = captures_of(fn)
        (call_args, call_kwargs), inputs, paths, params = _proxy_args(fn, args, kwargs, static)
        try:
            result = branching(fn, branches)(*call_args, **call_kwargs)
        except TilefnError:
            raise
        if state.region is not None:
            raise TracingError("this tile loop did not finish (`break` or `return` inside a tile loop "
                               "is not supported: let the loop run to its end)", source=state.region.source)
        outputs = _outputs(result)
        check_claimed(state, fn)
    eqns = list(state.host_eqns)
    if state.kernel is not None:
        kernel = _kernel_eqn(state)
        writes = {e.inputs[0] for e in walk_eqns(kernel.params["region"].eqns) if e.prim in WRITES}
        before, after = _split_host_after_loops(state, writes)
        eqns += before
        eqns.append(kernel)
        eqns += after
    return Program(kernel_name(fn), inputs, eqns, outputs, state.blocks,
                   [entry for entry in state.consts.values()], state.hints, params, state.tunables.values(),
                   state.captured.items(), paths, guards_of(state), state.value_reads)
