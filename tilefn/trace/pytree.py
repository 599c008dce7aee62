"""Pytrees: nested lists, tuples (named ones included) and dicts of leaves."""
from __future__ import annotations


def tree_leaves(tree):
    """The leaves of `tree`, depth first."""
    if isinstance(tree, (list, tuple)):
        for item in tree:
            yield from tree_leaves(item)
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from tree_leaves(item)
    else:
        yield tree


def tree_map(fn, tree):
    """`tree` with `fn` applied to every leaf (containers keep their types)."""
    if isinstance(tree, (list, tuple)):
        items = [tree_map(fn, item) for item in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else type(tree)(items)
    if isinstance(tree, dict):
        return {k: tree_map(fn, v) for k, v in tree.items()}
    return fn(tree)
