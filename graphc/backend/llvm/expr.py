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

    def describe(self, ref: dict[int, int]) -> str:
        """This node's entry in a DAG key, its operands given by their numbers in ``ref``."""
        if self.kind == "input":
            return f"in{self.index}:{self.dtype}"
        if self.kind == "const":
            return f"c:{self.dtype}:{np.asarray(self.value, self.dtype).tobytes().hex()}"
        return f"{self.op}{self.params}:{self.dtype}({','.join(str(ref[id(a)]) for a in self.args)})"


def topo_order(outputs: Sequence[SNode]) -> list[SNode]:
    """Nodes reachable from ``outputs``, operands first (iterative: fused DAGs can be deep)."""
    order: list[SNode] = []
    seen: set[int] = set()
    stack: list[tuple[SNode, bool]] = [(o, False) for o in reversed(outputs)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((a, False) for a in reversed(node.args) if id(a) not in seen)
    return order


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
        """A text identifying the computation (linear in the DAG's size)."""
        ref: dict[int, int] = {}
        parts = [";".join(f"{d}{'s' if s else ''}" for d, s in self.inputs)]
        for k, node in enumerate(topo_order(self.outputs)):
            ref[id(node)] = k
            parts.append(node.describe(ref))
        parts.append("->" + ",".join(str(ref[id(o)]) for o in self.outputs))
        return "|".join(parts)


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
    for node in topo_order(dag.outputs):
        if node.kind == "input":
            memo[id(node)] = frozenset([node.index])
        else:
            memo[id(node)] = frozenset().union(*(memo[id(a)] for a in node.args))
    return [memo[id(o)] for o in dag.outputs]


_EXTRA_BUILDERS: dict[type, Callable[[Apply], tuple[ScalarDAG, list[int]] | None]] = {}


def register_dag_builder(op_type: type, fn: Callable[[Apply], tuple[ScalarDAG, list[int]] | None]) -> None:
    """Let another elementwise-like op type lower through the kernels."""
    _EXTRA_BUILDERS[op_type] = fn
