"""`print_repro`: a standalone Python script that rebuilds a call's inputs and runs the kernel.

The script holds the kernel's source (its decorator replaced by one that fixes the config), the
imports, constants and helper functions the kernel refers to, and a caller that rebuilds every
argument: same shape, strides, dtype and device, random values for floating tensors, the exact
values for small integer tensors (indices and offsets must stay valid), random ones in the same
range for large ones.
"""
from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
import types

import torch

from .config import Config

BEGIN = "# === tilefn.helion repro script: begin ==="
END = "# === tilefn.helion repro script: end ==="
EXACT_INT_ELEMENTS = 4096  # integer tensors up to this size are written out value by value


def repro_script(kernel, args, config) -> str:
    fn = kernel.fn
    params = list(inspect.signature(fn).parameters.values())
    config = Config.of(config)
    lines = [BEGIN, f"# kernel {fn.__name__}, config {config!r}", "from __future__ import annotations", "",
             "import torch", "", "import tilefn.helion as helion"]
    lines += _dependencies(fn)
    lines += ["", "", f"@helion.kernel(config={config!r}, static_shapes={kernel.settings.static_shapes!r})",
              _function_source(fn), "", "def helion_repro_caller():", "    torch.manual_seed(0)"]
    call = []
    for param, value in zip(params, args):
        lines.append(f"    {param.name} = {_rebuild(value)}")
        call.append(param.name if param.kind is not param.KEYWORD_ONLY else f"{param.name}={param.name}")
    lines += [f"    return {fn.__name__}({', '.join(call)})", "", "", 'if __name__ == "__main__":',
              "    helion_repro_caller()", END]
    return "\n".join(lines)


def _function_source(fn) -> str:
    """The function's source without its decorators."""
    source = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(source).body[0]
    return "\n".join(source.splitlines()[node.lineno - 1:]).rstrip() + "\n"


def _global_names(code) -> set:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _used_names(fn) -> list[str]:
    """Global names the function reads (in source order), and names in its parameter annotations."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    node = tree.body[0]
    bodies = [*node.body, *(d for d in node.args.defaults), *(d for d in node.args.kw_defaults if d)]
    globals_read = _global_names(fn.__code__)
    seen = []
    for part in bodies:
        for sub in ast.walk(part):
            if (isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id in globals_read
                    and sub.id not in seen):
                seen.append(sub.id)
    for arg in (*node.args.args, *node.args.kwonlyargs):  # annotations may name torch, Tensor, ...
        if arg.annotation is not None:
            for sub in ast.walk(arg.annotation):
                if isinstance(sub, ast.Name) and sub.id not in seen:
                    seen.append(sub.id)
    return seen


def _dependencies(fn) -> list[str]:
    """Imports, then constants, then helper functions from `fn`'s module that its body names."""
    imports, constants, definitions = [], [], []
    _collect(fn, {"torch", "helion"}, imports, constants, definitions)
    lines = imports + ([""] + constants if constants else [])
    for source in definitions:
        lines += ["", "", source]
    return lines


def _collect(fn, done: set, imports: list, constants: list, definitions: list) -> None:
    module_file = getattr(inspect.getmodule(fn), "__file__", None)
    for name in _used_names(fn):
        if name in done or name not in fn.__globals__:
            continue
        done.add(name)
        value = fn.__globals__[name]
        if isinstance(value, types.ModuleType):
            mod = value.__name__
            imports.append(f"import {mod}" if mod == name else f"import {mod} as {name}")
        elif type(value).__name__ == "Kernel" and getattr(value, "fn", None) is not None:
            constants.append(f"# {name}: another helion kernel; its definition is not included")
        elif isinstance(value, (types.FunctionType, type)):
            module = getattr(value, "__module__", None)
            same_file = module == "__main__" or (
                module_file is not None and getattr(inspect.getmodule(value), "__file__", None) == module_file)
            if module and not same_file:
                imports.append(f"from {module} import {value.__qualname__}" +
                               (f" as {name}" if value.__qualname__ != name else ""))
                continue
            try:
                source = textwrap.dedent(inspect.getsource(value)).rstrip()
            except (OSError, TypeError):
                constants.append(f"# {name}: its source is not available")
                continue
            if isinstance(value, types.FunctionType):
                _collect(value, done, imports, constants, definitions)
            definitions.append(source)
        elif isinstance(value, torch.dtype):
            constants.append(f"{name} = {value}")
        elif _is_literal(value):
            constants.append(f"{name} = {value!r}")
        elif not hasattr(builtins, name):
            constants.append(f"# {name}: a {type(value).__name__} the script cannot rebuild")


def _is_literal(value) -> bool:
    if isinstance(value, (bool, int, float, str, type(None))):
        return True
    if isinstance(value, (tuple, list)):
        return all(_is_literal(v) for v in value)
    return False


def _rebuild(value) -> str:
    if isinstance(value, torch.Tensor):
        return _tensor(value)
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, torch.device):
        return f"torch.device({str(value)!r})"
    if _is_literal(value):
        return repr(value)
    if type(value) in (list, tuple):
        inner = ", ".join(_rebuild(v) for v in value) + ("," if len(value) == 1 and type(value) is tuple else "")
        return f"[{inner}]" if type(value) is list else f"({inner})"
    raise TypeError(f"print_repro cannot rebuild an argument of type {type(value).__name__}")


def _tensor(t: torch.Tensor) -> str:
    shape, stride = list(t.shape), list(t.stride())
    dtype, device = str(t.dtype), str(t.device)
    contiguous = t.is_contiguous()
    extent = 1 + sum((s - 1) * st for s, st in zip(shape, stride)) if t.numel() else 0
    size = shape if contiguous else [extent]
    where = f"dtype={dtype}, device={device!r}"
    if t.dtype.is_floating_point or t.dtype.is_complex:
        made = f"torch.randn({size}, {where})"
    elif t.dtype == torch.bool:
        made = f"torch.randint(0, 2, {size}, device={device!r}).bool()"
    elif contiguous and t.numel() <= EXACT_INT_ELEMENTS:
        return f"torch.tensor({t.detach().cpu().flatten().tolist()}, {where}).reshape({shape})"
    else:
        low, high = (int(t.min()), int(t.max())) if t.numel() else (0, 0)
        made = f"torch.randint({low}, {high + 1}, {size}, {where})"
    return made if contiguous else f"{made}.as_strided({shape}, {stride})"
