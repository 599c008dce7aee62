"""Interpreter rules of the primitives that rearrange a value's elements (views, stacking, sorting,
gathers): eager torch on the whole value, no tiles or memory involved."""
from __future__ import annotations

import torch

from .interpret_table import rule
from .trace import primitives as p


@rule(p.sort_p)
def _sort(ctx, eqn, x):
    values, indices = torch.sort(x, dim=-1, descending=eqn.params["descending"], stable=True)
    return values, indices


@rule(p.topk_p)
def _topk(ctx, eqn, x):
    values, indices = torch.sort(x, dim=-1, descending=eqn.params["largest"], stable=True)
    k = eqn.params["k"]
    return values[..., :k], indices[..., :k]


@rule(p.gather_p)
def _gather(ctx, eqn, src, index):
    return (torch.gather(src, eqn.params["axis"], index.long()),)


@rule(p.reshape_p)
def _reshape(ctx, eqn, x):
    return (x.reshape(ctx.resolve(eqn.params["shape"])),)


@rule(p.permute_p)
def _permute(ctx, eqn, x):
    return (x.permute(eqn.params["perm"]),)


@rule(p.expand_dims_p)
def _expand_dims(ctx, eqn, x):
    return (x.unsqueeze(eqn.params["axis"]),)


@rule(p.squeeze_p)
def _squeeze(ctx, eqn, x):
    return (x.squeeze(eqn.params["axis"]),)


@rule(p.broadcast_to_p)
def _broadcast_to(ctx, eqn, x):
    return (torch.broadcast_to(x, ctx.resolve(eqn.params["shape"])),)


@rule(p.stack_p)
def _stack(ctx, eqn, *xs):
    return (torch.stack(xs, dim=-1),)


@rule(p.split_p)
def _split(ctx, eqn, x):
    return tuple(torch.unbind(x, dim=-1))


@rule(p.concat_p)
def _concat(ctx, eqn, *xs):
    return (torch.cat(xs, dim=eqn.params["axis"]),)


@rule(p.flip_p)
def _flip(ctx, eqn, x):
    return (torch.flip(x, [eqn.params["axis"]]),)
