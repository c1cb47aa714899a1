"""The IR: variables, constants and Apply nodes.

A graph is a bipartite DAG: an :class:`Apply` node applies an :class:`~graphc.graph.op.Op`
to input variables and owns its output variables. A variable with no owner is a
graph input (a symbolic argument, a constant or a shared variable).
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from graphc.graph.operators import TensorOperators
from graphc.graph.type import TensorType

if TYPE_CHECKING:
    from graphc.graph.op import Op

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ids = itertools.count()


def user_trace() -> str:
    """``file:line`` of the innermost stack frame outside the graphc package."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


class Variable(TensorOperators):
    """A symbolic tensor: the input or output of Apply nodes."""

    def __init__(
        self,
        type: TensorType,
        owner: Apply | None = None,
        index: int | None = None,
        name: str | None = None,
    ) -> None:
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name
        self.id = next(_ids)

    dtype = property(lambda self: self.type.dtype)
    ndim = property(lambda self: self.type.ndim)
    broadcastable = property(lambda self: self.type.broadcastable)

    @property
    def static_shape(self) -> tuple[int | None, ...]:
        return self.type.shape

    def clone(self) -> Variable:
        """A new ownerless variable of the same type and name."""
        return Variable(self.type, name=self.name)

    def auto_name(self) -> str:
        if self.name:
            return self.name
        if self.owner is not None:
            return f"{self.owner.op}.{self.index}" if len(self.owner.outputs) > 1 else str(self.owner.op)
        return f"<{self.type.dtype}{list(self.type.shape)}>"

    def __repr__(self) -> str:
        return self.name or self.auto_name()

    def eval(self, inputs: dict[Variable, Any] | None = None) -> np.ndarray:
        """Compile and run this variable once (reference mode), like Theano's ``eval``."""
        from graphc.compile.function import function

        inputs = inputs or {}
        fn = function(list(inputs), self, mode="PY", on_unused_input="ignore")
        return fn(*inputs.values())


class Constant(Variable):
    """A variable whose value is fixed when the graph is built."""

    def __init__(self, type: TensorType, data: np.ndarray, name: str | None = None) -> None:
        super().__init__(type, name=name)
        self.data = np.asarray(data, dtype=type.dtype)
        self.data.setflags(write=False)

    def signature(self) -> tuple:
        """Hashable identity used to merge equal constants."""
        return (self.type, self.data.shape, self.data.tobytes())

    def clone(self) -> Constant:
        return Constant(self.type, self.data, name=self.name)

    def __repr__(self) -> str:
        if self.name:
            return self.name
        if self.data.size <= 8:
            return np.array2string(self.data, separator=",") if self.data.ndim else str(self.data)
        return f"Constant{{{self.type.dtype}{list(self.data.shape)}}}"


class Apply:
    """One application of an Op to input variables, producing output variables."""

    def __init__(self, op: Op, inputs: Sequence[Variable], output_types: Sequence[TensorType]) -> None:
        for i, inp in enumerate(inputs):
            if not isinstance(inp, Variable):
                raise TypeError(f"{op}: input {i} must be a graphc Variable, got {type(inp).__name__}")
        self.op = op
        self.inputs = list(inputs)
        self.outputs = [Variable(t, owner=self, index=i) for i, t in enumerate(output_types)]
        self.trace = user_trace()
        self.tag: dict[str, Any] = {}

    @property
    def out(self) -> Variable:
        (out,) = self.outputs
        return out

    def copy(self, inputs: Sequence[Variable]) -> Apply:
        """The same op on ``inputs`` of the same types, with fresh output variables."""
        node = Apply(self.op, inputs, [o.type for o in self.outputs])
        node.trace = self.trace
        node.tag = dict(self.tag)
        return node

    def clone_with_new_inputs(self, inputs: Sequence[Variable]) -> Apply:
        """Rebuild this node on new inputs through ``make_node`` (re-inferring types)."""
        node = self.op.make_node(*inputs)
        node.trace = self.trace
        return node

    def __repr__(self) -> str:
        return f"{self.op}({', '.join(map(repr, self.inputs))})"


def ancestors(outputs: Iterable[Variable], blockers: Iterable[Variable] = ()) -> list[Variable]:
    """All variables that ``outputs`` depend on (depth-first, without recursion)."""
    blocked = set(blockers)
    seen: set[Variable] = set()
    order: list[Variable] = []
    stack = list(outputs)
    while stack:
        var = stack.pop()
        if var in seen:
            continue
        seen.add(var)
        order.append(var)
        if var.owner is not None and var not in blocked:
            stack.extend(var.owner.inputs)
    return order


def graph_inputs(outputs: Iterable[Variable], blockers: Iterable[Variable] = ()) -> list[Variable]:
    """Ownerless variables (or blockers) that ``outputs`` depend on."""
    blocked = set(blockers)
    return [v for v in ancestors(outputs, blocked) if v.owner is None or v in blocked]


def io_toposort(outputs: Sequence[Variable], blockers: Iterable[Variable] = ()) -> list[Apply]:
    """Apply nodes needed for ``outputs``, each after the nodes producing its inputs."""
    blocked = set(blockers)
    order: list[Apply] = []
    done: set[Apply] = set()
    # Iterative post-order DFS: deep graphs (long gradient chains) would overflow recursion.
    stack: list[tuple[Apply, bool]] = [
        (v.owner, False) for v in reversed(outputs) if v.owner is not None and v not in blocked
    ]
    while stack:
        node, expanded = stack.pop()
        if node in done:
            continue
        if expanded:
            done.add(node)
            order.append(node)
            continue
        stack.append((node, True))
        for inp in reversed(node.inputs):
            if inp.owner is not None and inp not in blocked and inp.owner not in done:
                stack.append((inp.owner, False))
    return order


def clone_graph(
    outputs: Sequence[Variable], replace: dict[Variable, Variable] | None = None
) -> tuple[list[Variable], dict[Variable, Variable]]:
    """Copy every Apply node of the graph of ``outputs``, substituting ``replace`` (old -> new).

    Returns the new outputs and the full old -> new map. Ownerless variables that
    are not replaced keep their identity (inputs, constants, shared variables).
    A node whose inputs changed type is rebuilt through ``make_node`` so its
    output types are inferred again.
    """
    memo: dict[Variable, Variable] = dict(replace or {})
    for node in io_toposort(outputs, blockers=memo):
        new_inputs = [memo.get(i, i) for i in node.inputs]
        if all(a.type == b.type for a, b in zip(new_inputs, node.inputs)):
            new_node = node.copy(new_inputs)
        else:
            new_node = node.clone_with_new_inputs(new_inputs)
        for old, new in zip(node.outputs, new_node.outputs):
            new.name = old.name
            memo.setdefault(old, new)
    return [memo.get(o, o) for o in outputs], memo
