"""Elementwise fusion: maximal regions of Elemwise nodes become one :class:`Fused` node.

Regions grow from each consumer towards its producers (in reverse topological
order). A producer joins its consumers' region when

- some node that uses its output is in that region; uses elsewhere (other
  nodes, graph outputs) make the value an extra output of the fused node
  (computed once: a bias add feeding relu and relu's gradient is one kernel
  writing both), unless such a use leads back into the region (contracting it
  would create a cycle) or the value is not of the region's full shape;
- it has the region's rank, and it is not broadcast *up* inside the region
  (a row vector computed once must not be recomputed for every row).

A region whose result has a single use by a :class:`~graphc.ops.reduce.Reduce`
absorbs the reduction: ``sum(exp(x) * y)`` is one node.
"""

from __future__ import annotations

from graphc.graph.basic import Apply, Variable
from graphc.graph.fgraph import OUTPUT, FunctionGraph
from graphc.ops.elemwise import Elemwise
from graphc.rewrite.framework import RewriteLog, check_replacement, register_global
from graphc.rewrite.fused import Fused
from graphc.rewrite.utils import RUN

# A region stops growing at this many nodes: huge kernels compile slowly and gain nothing.
MAX_FUSED_NODES = 256
# A value used outside its region joins it only when what lies below those uses is at most
# this many nodes (checked for cycles; beyond, it stays a separate node).
MAX_DOWNSTREAM = 400


def _broadcast_up(var: Variable, root: Variable) -> bool:
    return any(s == 1 and r != 1 for s, r in zip(var.type.shape, root.type.shape))


def _reduce_cls() -> type | None:
    try:
        from graphc.ops.reduce import Reduce
    except ImportError:  # reductions may be mid-edit
        return None
    return Reduce


def find_regions(fgraph: FunctionGraph) -> list[list[Apply]]:
    """Elementwise regions, each as nodes in topological order (its root last)."""
    order = fgraph.toposort()
    position = {n: k for k, n in enumerate(order)}
    region_of: dict[Apply, int] = {}
    sizes: list[int] = []
    roots: list[Apply] = []
    members: list[set[Apply]] = []
    # Per region: every node downstream of a consumer outside it. Such a node joining the
    # region would close a cycle (region -> outside consumer -> node -> region).
    below_outside: list[set[Apply]] = []
    below: dict[Apply, set[Apply]] = {}

    def downstream(node: Apply) -> set[Apply] | None:
        """The nodes below ``node``; None when there are too many to track (compile time and
        memory stay linear in the graph: such a use keeps its value out of the region)."""
        if node not in below:
            seen: set[Apply] | None = set()
            stack = [node]
            while stack and seen is not None:
                n = stack.pop()
                for out in n.outputs:
                    for c, _ in fgraph.clients.get(out, []):
                        if c != OUTPUT and c not in seen:
                            seen.add(c)
                            stack.append(c)
                if len(seen) > MAX_DOWNSTREAM:
                    seen = None
            below[node] = seen
        return below[node]

    for node in reversed(order):
        if not isinstance(node.op, Elemwise) or len(node.outputs) != 1:
            continue
        out = node.outputs[0]
        uses = fgraph.clients.get(out, [])
        consumers = {c for c, _ in uses if c != OUTPUT}
        target = None
        ids = sorted({region_of[c] for c in consumers if c in region_of})
        for rid in ids:
            if sizes[rid] >= MAX_FUSED_NODES or node in below_outside[rid]:
                continue
            root_out = roots[rid].outputs[0]
            outside = {c for c in consumers if region_of.get(c) != rid}
            used_outside = bool(outside) or len(consumers) < len(uses)
            if (out.ndim != root_out.ndim or _broadcast_up(out, root_out)
                    or (used_outside and out.type.shape != root_out.type.shape)):
                continue
            # A value also used outside becomes an extra output of the fused node (computed
            # once, e.g. a bias add feeding relu and relu's gradient), unless an outside
            # consumer leads back into the region.
            reach = [downstream(c) for c in outside]
            if any(r is None or r & members[rid] for r in reach):
                continue
            target = rid
            for r in reach:
                below_outside[rid] |= r
            break
        if target is None:
            target = len(roots)
            roots.append(node)
            sizes.append(0)
            members.append(set())
            below_outside.append(set())
        region_of[node] = target
        members[target].add(node)
        sizes[target] += 1
    regions: list[list[Apply]] = [[] for _ in roots]
    for node, rid in region_of.items():
        regions[rid].append(node)
    for nodes in regions:
        nodes.sort(key=position.__getitem__)
    return regions


def build_fused(fgraph: FunctionGraph, nodes: list[Apply], reduce_node: Apply | None = None
                ) -> tuple[Fused, list[Variable], list[Variable]]:
    """The Fused op for ``nodes`` (topologically sorted), its inputs, and the variables its
    outputs replace."""
    members = set(nodes)
    slot: dict[Variable, int] = {}
    inputs: list[Variable] = []
    for node in nodes:
        for inp in node.inputs:
            if (inp.owner not in members) and inp not in slot:
                slot[inp] = len(inputs)
                inputs.append(inp)
    steps = []
    for node in nodes:
        out = node.outputs[0]
        steps.append((node.op.scalar_op, tuple(slot[i] for i in node.inputs), out.dtype))
        slot[out] = len(inputs) + len(steps) - 1
    root = nodes[-1].outputs[0]
    replaced = [root]
    for node in nodes[:-1]:
        out = node.outputs[0]
        if any(c == OUTPUT or c not in members for c, _ in fgraph.clients.get(out, [])):
            replaced.append(out)
    reduce = None
    if reduce_node is not None:
        reduce = reduce_node.op
        replaced = [reduce_node.outputs[0]]
    op = Fused(len(inputs), steps, [slot[v] for v in ([root] if reduce else replaced)], reduce)
    return op, inputs, replaced


def _absorbable_reduce(fgraph: FunctionGraph, nodes: list[Apply]) -> Apply | None:
    Reduce = _reduce_cls()
    if Reduce is None:
        return None
    root = nodes[-1].outputs[0]
    uses = fgraph.clients.get(root, [])
    if len(uses) != 1 or uses[0][0] == OUTPUT:
        return None
    client = uses[0][0]
    if not isinstance(client.op, Reduce):
        return None
    members = set(nodes)
    for node in nodes[:-1]:  # extra outputs and a reduction do not mix
        if any(c == OUTPUT or c not in members for c, _ in fgraph.clients.get(node.outputs[0], [])):
            return None
    return client


@register_global("fusion", tags=(*RUN, "fusion"))
def elemwise_fusion(fgraph: FunctionGraph, log: RewriteLog) -> None:
    """Replace each elementwise region (and a sum consuming it) by one Fused node."""
    for nodes in find_regions(fgraph):
        if any(n not in fgraph.nx for n in nodes):
            continue
        reduce_node = _absorbable_reduce(fgraph, nodes)
        if len(nodes) < 2 and reduce_node is None:
            continue
        op, inputs, replaced = build_fused(fgraph, nodes, reduce_node)
        new_node = op.make_node(*inputs)
        new_node.trace = nodes[-1].trace
        new_outputs = new_node.outputs
        for old, new in zip(replaced, new_outputs):
            check_replacement("elemwise_fusion", old, new)
        for old, new in zip(replaced, new_outputs):
            fgraph.replace(old, new, reason="elemwise_fusion")
        what = f" + {reduce_node.op}" if reduce_node is not None else ""
        log.record("elemwise_fusion", f"{len(nodes)} elementwise nodes{what} -> {op}")
    # Regions are contracted without cycles by construction; networkx confirms it cheaply.
    fgraph.check_acyclic()
