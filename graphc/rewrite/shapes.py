"""What the graph proves about run-time shapes, for rewrites that need "same shape".

Each axis of each variable gets a *dimension token*; tokens known to be equal at
run time are joined in a union-find. Static lengths are tokens of their own
(the int). Sources of equalities:

- an axis passes through unchanged (unary elementwise ops, DimShuffle, softmax,
  the kept axes of a reduction, SumToShape's result and its ``like``);
- an elementwise result along an axis where every input that is not statically
  1 carries the *same* token (a None length may be 1 at run time and broadcast,
  so two different tokens prove nothing);
- ops that check lengths when they run: the inner axes of ``dot``/``matmul``,
  labels against the rows of ``LabelPick``/``LabelScatter``.

A graph with lazy ops (``ifelse``) may skip the checking ones, so there only
pass-through equalities are used. The facts hold for the values of variables,
which rewrites preserve, so one ShapeInfo serves a whole rewrite run.
"""

from __future__ import annotations

from typing import Any

from graphc.graph.basic import Apply, Variable
from graphc.graph.fgraph import FunctionGraph
from graphc.ops.dimshuffle import DimShuffle
from graphc.ops.elemwise import Elemwise, SumToShape

Token = Any  # an int (static length) or a (Variable, axis) pair


class ShapeInfo:
    def __init__(self, fgraph: FunctionGraph) -> None:
        self.parent: dict[Token, Token] = {}
        self.dims: dict[Variable, tuple[Token, ...]] = {}
        self.checks = not any(getattr(n.op, "lazy", False) for n in fgraph.nx.nodes)

    # -- union-find ---------------------------------------------------------------------
    def find(self, t: Token) -> Token:
        root = t
        while root in self.parent:
            root = self.parent[root]
        while t in self.parent and self.parent[t] != root:  # path compression
            self.parent[t], t = root, self.parent[t]
        return root

    def union(self, a: Token, b: Token) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if isinstance(ra, int) and isinstance(rb, int):
            return  # contradictory static lengths: the program fails at run time anyway
        if isinstance(ra, int):  # keep a static length as the representative
            ra, rb = rb, ra
        self.parent[ra] = rb

    # -- queries ------------------------------------------------------------------------
    def shape_of(self, var: Variable) -> tuple[Token, ...]:
        if var not in self.dims:
            for node in self._pending(var):
                self._infer(node)
            if var not in self.dims:  # an input
                self.dims[var] = self._fresh(var)
        return tuple(self.find(t) for t in self.dims[var])

    def same_dim(self, a: Variable, i: int, b: Variable, j: int) -> bool:
        return self.shape_of(a)[i] == self.shape_of(b)[j]

    def same_shape(self, a: Variable, b: Variable) -> bool:
        return a.ndim == b.ndim and self.shape_of(a) == self.shape_of(b)

    def broadcasts_into(self, a: Variable, b: Variable) -> bool:
        """Every axis of ``a`` is statically 1 or provably ``b``'s length (same rank)."""
        if a.ndim != b.ndim:
            return False
        sa, sb = self.shape_of(a), self.shape_of(b)
        return all(x == 1 or x == y for x, y in zip(sa, sb))

    # -- inference ------------------------------------------------------------------------
    def _pending(self, var: Variable) -> list[Apply]:
        """Nodes whose outputs are not inferred yet that ``var`` depends on, producers first."""
        order: list[Apply] = []
        done: set[Apply] = set()
        stack: list[tuple[Apply, bool]] = [(var.owner, False)] if var.owner is not None else []
        while stack:
            node, expanded = stack.pop()
            if node in done:
                continue
            if expanded:
                done.add(node)
                order.append(node)
                continue
            stack.append((node, True))
            for inp in node.inputs:
                if inp.owner is not None and inp not in self.dims and inp.owner not in done:
                    stack.append((inp.owner, False))
        return order

    @staticmethod
    def _fresh(var: Variable) -> tuple[Token, ...]:
        return tuple(s if s is not None else (var, k) for k, s in enumerate(var.type.shape))

    def _get(self, var: Variable) -> tuple[Token, ...]:
        if var not in self.dims:
            self.dims[var] = self._fresh(var)
        return tuple(self.find(t) for t in self.dims[var])

    def _set(self, var: Variable, dims: list[Token]) -> None:
        fresh = self._fresh(var)
        out = []
        for f, d in zip(fresh, dims):
            if d is None:
                out.append(f)
            else:
                if isinstance(f, int):  # a static length is a fact too
                    self.union(f, d)
                out.append(d)
        self.dims[var] = tuple(out)

    def _infer(self, node: Apply) -> None:
        if all(o in self.dims for o in node.outputs):
            return
        op = node.op
        ins = [self._get(i) for i in node.inputs]
        out = node.outputs[0]
        dims: list[Token] | None = None
        if isinstance(op, Elemwise):
            dims = [_broadcast_dim(col) for col in zip(*ins)] if ins else []
        elif isinstance(op, DimShuffle):
            dims = [1 if o == "x" else ins[0][o] for o in op.new_order]
        elif isinstance(op, SumToShape):
            dims = list(ins[1])
        else:
            dims = self._infer_other(node, ins)
        if dims is not None and len(node.outputs) == 1 and len(dims) == out.ndim:
            self._set(out, dims)
        for o in node.outputs:
            if o not in self.dims:
                self.dims[o] = self._fresh(o)

    def _infer_other(self, node: Apply, ins: list[tuple[Token, ...]]) -> list[Token] | None:
        op = node.op
        name = type(op).__name__
        module = type(op).__module__
        if name in ("Softmax", "LogSoftmax") and module.endswith("nnet"):
            return list(ins[0])
        if name == "Reduce" and module.endswith("reduce"):
            return [d for k, d in enumerate(ins[0]) if k not in op.axis]
        if name in ("Argmax", "Argmin") and module.endswith("reduce"):
            return [d for k, d in enumerate(ins[0]) if k not in op.axis]
        if name == "Dot" and module.endswith("linalg"):
            a, b = ins
            if self.checks:
                self.union(a[-1], b[0])
            return list(a[:-1]) + list(b[1:])
        if name == "MatMul" and module.endswith("linalg"):
            a, b = ins
            if self.checks:
                self.union(a[-1], b[-2])
            return None  # batch axes broadcast: left to static inference
        if name == "LabelPick" and module.endswith("nnet"):
            x, labels = ins
            if self.checks:
                for p, q in zip(x[:-1], labels):
                    self.union(p, q)
            return list(x[:-1])
        if name == "LabelScatter" and module.endswith("nnet"):
            g, labels, like = ins
            if self.checks:
                for p, q, r in zip(g, labels, like[:-1]):
                    self.union(p, r)
                    self.union(q, r)
            return list(like)
        if name == "Gemm":
            c, _, a, b, _ = ins
            if self.checks:
                self.union(a[-1], b[0])
            return [_broadcast_dim(col) for col in zip(list(a[:-1]) + list(b[1:]), c)]
        if name == "Fused" and op.reduce is None and len(node.outputs) == 1:
            return [_broadcast_dim(col) for col in zip(*ins)] if ins else []
        return None


def _broadcast_dim(dims: tuple[Token, ...]) -> Token | None:
    """The length of a broadcast along one axis, if the operands prove it."""
    candidates = {d for d in dims if d != 1}
    if not candidates:
        return 1
    if len(candidates) == 1:
        return candidates.pop()
    ints = {d for d in candidates if isinstance(d, int)}
    if len(ints) == 1:  # a static length wins over unknown ones (they must be it or 1)
        return ints.pop()
    return None


def shape_info(fgraph: FunctionGraph) -> ShapeInfo:
    """The ShapeInfo of ``fgraph``, built on first use and kept for the rewrite run."""
    info = getattr(fgraph, "_graphc_shape_info", None)
    if info is None:
        info = ShapeInfo(fgraph)
        fgraph._graphc_shape_info = info  # type: ignore[attr-defined]
    return info
