"""Scalar expression DAGs: what an elementwise kernel computes per element.

An Elemwise node is a one-op DAG; a fused node (a scalar sub-graph) is a larger
one. Kernels are generated from DAGs only, so both lower through the same path.
Small constants are folded into the DAG as immediates instead of being passed
as arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from graphc.graph.basic import Apply, Constant, Variable


@dataclass(frozen=True, eq=False)
class SNode:
    """One scalar value: a kernel input, an immediate constant, or an op applied to nodes."""

    kind: str  # "input" | "const" | "apply"
    dtype: str
    index: int = -1
    value: object = None
    op: str = ""
    params: tuple = ()
    args: tuple[SNode, ...] = ()
    impl: Callable | None = field(default=None, repr=False)

    def key(self, memo: dict[int, str]) -> str:
        k = memo.get(id(self))
        if k is not None:
            return k
        if self.kind == "input":
            k = f"in{self.index}:{self.dtype}"
        elif self.kind == "const":
            k = f"c:{self.dtype}:{np.asarray(self.value, self.dtype).tobytes().hex()}"
        else:
            inner = ",".join(a.key(memo) for a in self.args)
            k = f"{self.op}{self.params}:{self.dtype}({inner})"
        memo[id(self)] = k
        return k


def s_input(index: int, dtype: str) -> SNode:
    return SNode("input", dtype, index=index)


def s_const(value: object, dtype: str) -> SNode:
    return SNode("const", dtype, value=np.asarray(value, dtype=dtype)[()])


def s_apply(scalar_op: object, args: Sequence[SNode], dtype: str) -> SNode:
    return SNode("apply", dtype, op=scalar_op.name, params=tuple(scalar_op.params),  # type: ignore[attr-defined]
                 args=tuple(args), impl=getattr(scalar_op, "impl", None))


@dataclass
class ScalarDAG:
    """Kernel inputs (dtype, statically a single element?) and output expressions."""

    inputs: list[tuple[str, bool]]
    outputs: list[SNode]

    def key(self) -> str:
        memo: dict[int, str] = {}
        ins = ";".join(f"{d}{'s' if s else ''}" for d, s in self.inputs)
        return ins + "->" + "|".join(o.key(memo) for o in self.outputs)


def _is_static_scalar(var: Variable) -> bool:
    return all(s == 1 for s in var.type.shape)


def _immediate(var: Variable) -> bool:
    return isinstance(var, Constant) and var.data.size == 1


def dag_from_elemwise(node: Apply) -> tuple[ScalarDAG, list[int]] | None:
    """The DAG of an Elemwise node and, per kernel input, the node input it reads."""
    args, taken, inputs = _kernel_inputs(node)
    if not taken:  # all constant: nothing to loop over (constant folding's job)
        return None
    out = s_apply(node.op.scalar_op, args, node.outputs[0].dtype)
    return ScalarDAG(inputs, [out]), taken


def _kernel_inputs(node: Apply) -> tuple[list[SNode], list[int], list[tuple[str, bool]]]:
    args: list[SNode] = []
    taken: list[int] = []
    inputs: list[tuple[str, bool]] = []
    for pos, var in enumerate(node.inputs):
        if _immediate(var):
            args.append(s_const(var.data.reshape(()), var.dtype))
        else:
            args.append(s_input(len(taken), var.dtype))
            taken.append(pos)
            inputs.append((var.dtype, _is_static_scalar(var)))
    return args, taken, inputs


def dag_from_fused(node: Apply) -> tuple[ScalarDAG, list[int]] | None:
    """The DAG of a Fused node's scalar steps (its optional reduction runs after the kernel)."""
    slots, taken, inputs = _kernel_inputs(node)
    if not taken:
        return None
    for sop, args, dtype in node.op.steps:
        slots.append(s_apply(sop, [slots[a] for a in args], dtype))
    return ScalarDAG(inputs, [slots[o] for o in node.op.outputs]), taken


def dag_for_node(node: Apply) -> tuple[ScalarDAG, list[int]] | None:
    """A DAG for any node the kernels can run (Elemwise, fused scalar graphs), else None."""
    from graphc.ops.elemwise import Elemwise

    if isinstance(node.op, Elemwise):
        return dag_from_elemwise(node)
    try:
        from graphc.rewrite.fused import Fused
    except ImportError:  # fusion is optional
        Fused = None  # noqa: N806
    if Fused is not None and isinstance(node.op, Fused):
        return dag_from_fused(node)
    builder = _EXTRA_BUILDERS.get(type(node.op))
    return builder(node) if builder else None


def input_dependencies(dag: ScalarDAG) -> list[frozenset[int]]:
    """For each output, the kernel inputs it reads (its shape is their broadcast)."""
    memo: dict[int, frozenset[int]] = {}

    def deps(n: SNode) -> frozenset[int]:
        stack = [n]
        while stack:
            cur = stack[-1]
            if id(cur) in memo:
                stack.pop()
                continue
            pending = [a for a in cur.args if id(a) not in memo]
            if pending:
                stack.extend(pending)
                continue
            if cur.kind == "input":
                memo[id(cur)] = frozenset([cur.index])
            else:
                memo[id(cur)] = frozenset().union(*(memo[id(a)] for a in cur.args))
            stack.pop()
        return memo[id(n)]

    return [deps(o) for o in dag.outputs]


_EXTRA_BUILDERS: dict[type, Callable[[Apply], tuple[ScalarDAG, list[int]] | None]] = {}


def register_dag_builder(op_type: type, fn: Callable[[Apply], tuple[ScalarDAG, list[int]] | None]) -> None:
    """Let another op type (e.g. the fusion pass's Fused op) lower through the kernels."""
    _EXTRA_BUILDERS[op_type] = fn
