"""The NumPy reference evaluator: runs each node's ``perform``. It is the oracle.

Every other backend is tested against it, so it checks more than it must:
each output's dtype and its fit with the static shape the node promised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.config import config
from graphc.graph.basic import Apply, Variable
from graphc.graph.fgraph import FunctionGraph


class NodeRuntimeError(ValueError):
    """An op failed while the function ran; the message names the op and its user line."""


def describe_failure(node: Apply, inputs: Sequence[Any], exc: BaseException) -> str:
    shapes = ", ".join(
        f"{getattr(v, 'dtype', type(v).__name__)}{list(np.shape(v))}" for v in inputs
    )
    return (
        f"{node.op} failed: {exc}\n"
        f"  input shapes: ({shapes})\n"
        f"  the op was built at {node.trace}"
    )


def run_node(node: Apply, inputs: list[Any]) -> list[Any]:
    """``node.op.perform`` with errors turned into messages that point at user code."""
    try:
        outs = node.op.perform(node, inputs)
    except NodeRuntimeError:
        raise
    except (ValueError, IndexError, TypeError, ZeroDivisionError, np.linalg.LinAlgError) as exc:
        raise NodeRuntimeError(describe_failure(node, inputs, exc)) from exc
    if len(outs) != len(node.outputs):
        raise RuntimeError(f"{node.op}.perform returned {len(outs)} outputs, not {len(node.outputs)}")
    checked = []
    for var, value in zip(node.outputs, outs):
        if isinstance(value, np.ndarray | np.generic) or np.isscalar(value):
            value = np.asarray(value)
            if value.dtype.name != var.dtype:
                raise RuntimeError(f"{node.op} produced {value.dtype}, its type says {var.dtype}")
            if not var.type.is_shape_compatible(value.shape):
                raise RuntimeError(
                    f"{node.op} produced shape {value.shape}, its type says {var.type.shape}"
                )
            if config.nan_guard and value.dtype.kind == "f" and np.isnan(value).any():
                raise NodeRuntimeError(
                    f"NaN guard: {node.op} produced NaN (built at {node.trace})"
                )
        checked.append(value)
    return checked


class ReferenceProgram:
    """Evaluates a FunctionGraph node by node with NumPy."""

    def __init__(self, fgraph: FunctionGraph) -> None:
        self.fgraph = fgraph
        self.order = fgraph.toposort()
        self.lazy = any(node.op.lazy for node in self.order)
        self.constants: dict[Variable, Any] = {
            var: var.data for var in fgraph.variables if var.owner is None and hasattr(var, "data")
        }

    def __call__(self, input_values: Sequence[Any]) -> list[Any]:
        values: dict[Variable, Any] = dict(self.constants)
        values.update(zip(self.fgraph.inputs, input_values))
        if self.lazy:
            self._run_on_demand(values)
        else:
            for node in self.order:
                outs = run_node(node, [values[i] for i in node.inputs])
                values.update(zip(node.outputs, outs))
        return [values[o] for o in self.fgraph.outputs]

    def _run_on_demand(self, values: dict[Variable, Any]) -> None:
        """Compute only what the outputs need, letting lazy ops pick their inputs."""
        stack = list(self.fgraph.outputs)
        while stack:
            var = stack[-1]
            if var in values:
                stack.pop()
                continue
            node = var.owner
            missing = [i for i in node.op.needed_inputs(node, values) if i not in values]
            if missing:
                stack.extend(missing)
                continue
            outs = run_node(node, [values.get(i) for i in node.inputs])
            values.update(zip(node.outputs, outs))
            stack.pop()
