"""Control flow: the lazy ``ifelse`` and ``map_over_indices`` (a small scan used by jacobian)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.graph.basic import Apply, Constant, Variable, ancestors
from graphc.graph.op import Op, grad_undefined
from graphc.graph.type import TensorType
from graphc.ops.registry import register
from graphc.tensor.basic import as_tensor_variable

__all__ = ["ifelse", "IfElse", "map_over_indices", "MapOverIndices"]


class IfElse(Op):
    """``ifelse(cond, a, b)``: evaluates only the branch that ``cond`` selects.

    Inputs are ``cond, a_1..a_n, b_1..b_n``; outputs are ``n`` values.
    """

    __props__ = ("n_outs",)
    lazy = True

    def __init__(self, n_outs: int) -> None:
        self.n_outs = n_outs

    def make_node(self, cond: Any, *branches: Variable) -> Apply:
        cond = as_tensor_variable(cond)
        if cond.ndim != 0:
            raise TypeError(f"ifelse: the condition must be a scalar, got a {cond.ndim}-d tensor")
        a, b = branches[: self.n_outs], branches[self.n_outs:]
        types = []
        for x, y in zip(a, b):
            if x.dtype != y.dtype or x.ndim != y.ndim:
                raise TypeError(f"ifelse: branches differ in type: {x.type} vs {y.type}")
            shape = tuple(p if p == q else None for p, q in zip(x.type.shape, y.type.shape))
            types.append(TensorType(x.dtype, shape))
        return Apply(self, [cond, *a, *b], types)

    def needed_inputs(self, node: Apply, values: dict) -> Sequence[Variable]:
        cond = node.inputs[0]
        if cond not in values:
            return [cond]
        n = self.n_outs
        chosen = node.inputs[1: 1 + n] if bool(values[cond]) else node.inputs[1 + n:]
        return [cond, *chosen]

    def perform(self, node: Apply, inputs: Sequence[Any]) -> list[Any]:
        n = self.n_outs
        chosen = inputs[1: 1 + n] if bool(inputs[0]) else inputs[1 + n:]
        return [np.asarray(v) for v in chosen]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        from graphc.ops.elemwise import zeros_like

        cond, n = inputs[0], self.n_outs
        a, b = inputs[1: 1 + n], inputs[1 + n:]
        ga = [ifelse(cond, g, zeros_like(x)) for g, x in zip(grads, a)]
        gb = [ifelse(cond, zeros_like(x), g) for g, x in zip(grads, b)]
        return [None, *ga, *gb]


register("ifelse", "control")


def ifelse(cond: Any, then_branch: Any, else_branch: Any) -> Any:
    """``then_branch`` if the scalar ``cond`` is true, else ``else_branch``; lazily.

    Branches may be single variables or equal-length lists of variables.
    """
    from graphc.ops.elemwise import _harmonize_operands, cast, upcast

    single = not isinstance(then_branch, list | tuple)
    a = [then_branch] if single else list(then_branch)
    b = [else_branch] if single else list(else_branch)
    if len(a) != len(b):
        raise ValueError(f"ifelse: {len(a)} values in the then branch, {len(b)} in the else branch")
    pairs = [_harmonize_operands([x, y]) for x, y in zip(a, b)]
    a = [cast(x, upcast(x.dtype, y.dtype)) for x, y in pairs]
    b = [cast(y, upcast(x.dtype, y.dtype)) for x, y in pairs]
    outs = IfElse(len(a)).make_node(cond, *a, *b).outputs
    return outs[0] if single else outs


class MapOverIndices(Op):
    """``stack([f(i) for i in range(n)])`` where ``f`` is a graph of the index ``i``.

    The inner graph reads the outer variables it closes over through the node's
    inputs, so the outer function supplies their values.
    """

    def __init__(self, index: Variable, body: Variable, free: Sequence[Variable]) -> None:
        self.index, self.body, self.free = index, body, list(free)
        self._program: Any = None

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __str__(self) -> str:
        return "MapOverIndices"

    def make_node(self, n: Variable, *free: Variable) -> Apply:
        return Apply(self, [n, *free], [TensorType(self.body.dtype, (None, *self.body.type.shape))])

    def perform(self, node: Apply, inputs: Sequence[Any]) -> list[np.ndarray]:
        if self._program is None:
            from graphc.backend.reference import ReferenceProgram
            from graphc.graph.fgraph import FunctionGraph

            fg = FunctionGraph([self.index, *self.free], [self.body], clone=True)
            self._program = ReferenceProgram(fg)
        n, *free = inputs
        rows = [
            self._program([np.asarray(i, dtype=self.index.dtype), *free])[0] for i in range(int(n))
        ]
        if not rows:
            return [np.zeros((0, *(s or 0 for s in self.body.type.shape)), dtype=self.body.dtype)]
        return [np.stack(rows).astype(self.body.dtype, copy=False)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        return [None] + [
            grad_undefined(self, k + 1, "map_over_indices (used by jacobian/hessian) has no "
                           "gradient yet; third derivatives are not supported")
            for k in range(len(inputs) - 1)
        ]


register("map_over_indices", "control", differentiable=False)


def map_over_indices(fn: Callable[[Variable], Variable], n: Any) -> Variable:
    """A tensor whose row ``i`` is ``fn(i)`` for ``i`` in ``range(n)``."""
    from graphc.tensor.basic import lscalar

    index = lscalar("i")
    body = as_tensor_variable(fn(index))
    free = [
        v for v in ancestors([body])
        if v.owner is None and v is not index and not isinstance(v, Constant)
    ]
    free.sort(key=lambda v: v.id)
    return MapOverIndices(index, body, free)(as_tensor_variable(n), *free)
