"""FunctionGraph: a graph with fixed inputs and outputs that rewrites can edit.

The structure lives in a ``networkx.DiGraph`` whose nodes are Apply nodes and
whose edges say "this node consumes an output of that one"; ``clients`` maps a
variable to the (node, input position) pairs using it. Outputs are consumed by
the pseudo-node ``"output"`` so replacing an output variable works like any
other replacement.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

import networkx as nx

from graphc.graph.basic import Apply, Variable, clone_graph, io_toposort

OUTPUT = "output"
Client = tuple[Apply | str, int]


class InconsistencyError(ValueError):
    """A replacement would break the graph (type change or cycle)."""


class FunctionGraph:
    def __init__(
        self, inputs: Sequence[Variable], outputs: Sequence[Variable], clone: bool = True
    ) -> None:
        if clone:
            outputs, memo = clone_graph(outputs, {i: i for i in inputs})
        self.inputs: list[Variable] = list(inputs)
        self.rebuild(outputs)

    def rebuild(self, outputs: Sequence[Variable], order: Sequence[Apply] | None = None) -> None:
        """Make the graph compute ``outputs`` (from the same inputs), dropping what it held:
        how a graph restored from the rewrite cache takes the place of the one given.
        ``order`` (a topological order of the nodes) becomes ``toposort()``'s order."""
        self.outputs: list[Variable] = list(outputs)
        self.nx = nx.DiGraph()
        self.clients: dict[Variable, list[Client]] = {}
        for var in self.inputs:
            self.clients.setdefault(var, [])
        for node in order or ():
            self._import_node(node)
        for node in io_toposort(self.outputs, blockers=self.inputs):
            self._import_node(node)
        for i, out in enumerate(self.outputs):
            self.clients.setdefault(out, []).append((OUTPUT, i))
        self._check_inputs_complete()

    # -- building --------------------------------------------------------------------
    def _import_node(self, node: Apply) -> None:
        if node in self.nx:
            return
        self.nx.add_node(node)
        for pos, inp in enumerate(node.inputs):
            self.clients.setdefault(inp, []).append((node, pos))
            if inp.owner is not None and inp not in self.inputs:
                self.nx.add_edge(inp.owner, node)
        for out in node.outputs:
            self.clients.setdefault(out, [])

    def _check_inputs_complete(self) -> None:
        known = set(self.inputs)
        for node in self.nx.nodes:
            for inp in node.inputs:
                if inp.owner is None and inp not in known and not _is_value_holder(inp):
                    raise ValueError(
                        f"the graph needs {inp!r} ({inp.type}), which is not among the "
                        f"function's inputs; add it to the inputs or use givens"
                    )

    # -- queries ---------------------------------------------------------------------
    @property
    def apply_nodes(self) -> set[Apply]:
        return set(self.nx.nodes)

    @property
    def variables(self) -> set[Variable]:
        return set(self.clients)

    def toposort(self) -> list[Apply]:
        """Apply nodes in an execution order (stable: ties keep creation order).

        The same order as networkx's ``lexicographical_topological_sort`` keyed on the
        insertion order, written out: it runs several times per compile, and networkx's
        first call of an algorithm in a process also compiles its argument-checking
        wrapper."""
        succ, pred = self.nx._succ, self.nx._pred  # the DiGraph's adjacency dicts
        order = {n: i for i, n in enumerate(succ)}
        indegree = {n: len(p) for n, p in pred.items()}
        ready = [(order[n], n) for n, d in indegree.items() if d == 0]
        heapq.heapify(ready)
        result = []
        while ready:
            _, node = heapq.heappop(ready)
            result.append(node)
            for child in succ[node]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    heapq.heappush(ready, (order[child], child))
        if len(result) != len(order):
            raise InconsistencyError("the graph has a cycle")
        return result

    def has_path(self, source: Apply, target: Apply) -> bool:
        """Whether ``target`` depends on ``source`` (or is it)."""
        return self.reaches_any(source, {target})

    def reaches_any(self, source: Apply, targets: set) -> bool:
        """Whether any of ``targets`` depends on ``source`` (or is it): one walk."""
        succ = self.nx._succ
        if source not in succ:
            return False
        seen = {source}
        stack = [source]
        while stack:
            node = stack.pop()
            if node in targets:
                return True
            for child in succ[node]:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return False

    def check_acyclic(self) -> None:
        if not nx.is_directed_acyclic_graph(self.nx):
            cycle = nx.find_cycle(self.nx)
            raise InconsistencyError(f"the graph has a cycle through {cycle}")

    # -- editing ---------------------------------------------------------------------
    def replace(self, old: Variable, new: Variable, reason: str = "") -> None:
        """Make every client of ``old`` use ``new`` instead, then drop dead nodes."""
        if old is new:
            return
        if old.type != new.type:
            raise InconsistencyError(
                f"{reason or 'replace'}: cannot replace {old!r} of type {old.type} by "
                f"{new!r} of type {new.type}"
            )
        # Variables already in the graph block the walk: only new nodes are visited.
        for node in io_toposort([new], blockers=self.clients):
            self._import_node(node)
        # A replacement that depends on the variable it replaces would form a cycle.
        if old.owner is not None and new.owner is not None and old.owner in self.nx:
            if new.owner is old.owner or self.has_path(old.owner, new.owner):
                raise InconsistencyError(f"{reason or 'replace'}: {new!r} depends on {old!r}")
        for client, pos in list(self.clients.get(old, [])):
            if client == OUTPUT:
                self.outputs[pos] = new
            else:
                client.inputs[pos] = new
                if old.owner is not None and old.owner in self.nx:
                    still_used = any(i.owner is old.owner for i in client.inputs)
                    if not still_used and self.nx.has_edge(old.owner, client):
                        self.nx.remove_edge(old.owner, client)
                if new.owner is not None and new not in self.inputs:
                    self.nx.add_edge(new.owner, client)
            self.clients.setdefault(new, []).append((client, pos))
        self.clients[old] = []
        self._prune(old)

    def replace_all(self, pairs: Iterable[tuple[Variable, Variable]], reason: str = "") -> None:
        for old, new in pairs:
            self.replace(old, new, reason)

    def _prune(self, var: Variable) -> None:
        """Remove the producer of ``var`` (and its now unused ancestors) if nothing uses it."""
        stack = [var]
        while stack:
            v = stack.pop()
            node = v.owner
            if node is None or node not in self.nx:
                continue
            if any(self.clients.get(o) for o in node.outputs):
                continue
            self.nx.remove_node(node)
            for o in node.outputs:
                self.clients.pop(o, None)
            for pos, inp in enumerate(node.inputs):
                uses = self.clients.get(inp, [])
                if (node, pos) in uses:
                    uses.remove((node, pos))
                if inp not in self.inputs:
                    stack.append(inp)

    def clone(self) -> FunctionGraph:
        """An independent copy (new Apply nodes; inputs kept as they are)."""
        return FunctionGraph(self.inputs, self.outputs, clone=True)

    def __repr__(self) -> str:
        return f"FunctionGraph({self.inputs} -> {self.outputs}, {len(self.nx)} nodes)"


def _is_value_holder(var: Variable) -> bool:
    # Constants and shared variables carry their own value.
    return hasattr(var, "data") or hasattr(var, "container")
