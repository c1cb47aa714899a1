"""The Op base class: what every operation defines in one place.

An op gives, side by side:

- ``make_node(*inputs)``: type inference (dtype and static shape) and build-time checks;
- ``perform(node, inputs)``: the NumPy reference semantics, returning the outputs;
- ``L_op(inputs, outputs, output_grads)`` (or the simpler ``grad``): its gradient, as graph.

Ops are immutable and compared by class and ``__props__``, so equal ops merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.graph.basic import Apply, Variable


class NullGrad:
    """A gradient that is mathematically undefined; it is an error only if it is used."""

    def __init__(self, op: Op, index: int, reason: str) -> None:
        self.op, self.index, self.reason = op, index, reason

    def message(self) -> str:
        return (
            f"the gradient of {self.op} with respect to its input {self.index} is undefined: "
            f"{self.reason}"
        )


def grad_undefined(op: Op, index: int, reason: str) -> NullGrad:
    return NullGrad(op, index, reason)


class Op:
    """Base class of graph operations. Subclasses set ``__props__`` and implement the hooks."""

    __props__: tuple[str, ...] = ()
    #: Lazy ops (ifelse) tell the evaluator which inputs they need, given the values so far.
    lazy: bool = False

    # -- identity -----------------------------------------------------------------
    def _props(self) -> tuple:
        return tuple(getattr(self, p) for p in self.__props__)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._props() == other._props()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._props()))

    def __str__(self) -> str:
        if not self.__props__:
            return type(self).__name__
        props = ", ".join(f"{p}={getattr(self, p)!r}" for p in self.__props__)
        return f"{type(self).__name__}{{{props}}}"

    __repr__ = __str__

    # -- the hooks ----------------------------------------------------------------
    def make_node(self, *inputs: Any) -> Apply:
        raise NotImplementedError(f"{type(self).__name__} must define make_node")

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} must define perform")

    def L_op(
        self,
        inputs: Sequence[Variable],
        outputs: Sequence[Variable],
        output_grads: Sequence[Variable],
    ) -> Sequence[Variable | NullGrad | None]:
        """Gradients of the cost w.r.t. each input (``None``: not connected)."""
        return self.grad(inputs, output_grads)

    def grad(
        self, inputs: Sequence[Variable], output_grads: Sequence[Variable]
    ) -> Sequence[Variable | NullGrad | None]:
        return [
            grad_undefined(self, i, f"{type(self).__name__} defines no gradient")
            for i in range(len(inputs))
        ]

    def needed_inputs(self, node: Apply, values: dict[Variable, Any]) -> Sequence[Variable]:
        """For lazy ops: the inputs needed next, given the values computed so far."""
        return node.inputs

    # -- building -----------------------------------------------------------------
    def __call__(self, *inputs: Any) -> Any:
        node = self.make_node(*inputs)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs
