"""Common-subexpression elimination: equal constants and equal applications become one.

Two nodes merge when their ops are equal (same class and ``__props__``) and
they read the very same input variables. Random ops are pure functions of
their state input here, so two draws from the same state are the same value
and merging them is exact.
"""

from __future__ import annotations

from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.fgraph import FunctionGraph
from graphc.rewrite.framework import RewriteLog, register_global, register_local
from graphc.rewrite.utils import FAST


def _key(node: Apply) -> tuple | None:
    key = (node.op, tuple(node.inputs))
    try:
        hash(key)
    except TypeError:  # an op with unhashable props never merges
        return None
    return key


def merge_constants(fgraph: FunctionGraph) -> int:
    first: dict[tuple, Constant] = {}
    merged = 0
    consts = sorted(
        (v for v in fgraph.variables if isinstance(v, Constant) and fgraph.clients.get(v)),
        key=lambda v: v.id,
    )
    for c in consts:
        sig = c.signature()
        keep = first.setdefault(sig, c)
        if keep is not c:
            fgraph.replace(c, keep, reason="merge")
            merged += 1
    return merged


def merge_nodes(fgraph: FunctionGraph) -> int:
    seen: dict[tuple, Apply] = {}
    merged = 0
    for node in fgraph.toposort():
        if node not in fgraph.nx:
            continue
        key = _key(node)
        if key is None:
            continue
        other = seen.get(key)
        if other is None or other not in fgraph.nx:
            seen[key] = node
            continue
        if any(a.type != b.type for a, b in zip(node.outputs, other.outputs)):
            continue
        for old, new in zip(node.outputs, other.outputs):
            if fgraph.clients.get(old):
                fgraph.replace(old, new, reason="merge")
        merged += 1
    return merged


@register_global("merge", "late_merge", tags=FAST)
def merge(fgraph: FunctionGraph, log: RewriteLog) -> None:
    """Merge equal constants, then equal nodes (in topological order, so chains merge)."""
    n_const = merge_constants(fgraph)
    n_nodes = merge_nodes(fgraph)
    if n_const or n_nodes:
        log.record("merge", f"merged {n_const} constants and {n_nodes} nodes")


@register_local("canonicalize", "stabilize", "specialize", tags=(*FAST, "merge"))
def local_merge(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """The same as :func:`merge` for one node, so rewrites that recreate an existing
    expression do not leave duplicates until the next global merge."""
    if not node.inputs:
        return None
    key = _key(node)
    if key is None:
        return None
    for client, _ in fgraph.clients.get(node.inputs[0], []):
        if client is node or not isinstance(client, Apply) or client not in fgraph.nx:
            continue
        if _key(client) == key and all(a.type == b.type for a, b in zip(node.outputs, client.outputs)):
            return list(client.outputs)
    return None
