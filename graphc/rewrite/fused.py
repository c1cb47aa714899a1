"""The Fused op: a region of elementwise ops as one node holding a scalar sub-graph.

The scalar sub-graph is a tuple of steps over numbered *slots*: slots
``0..n_inputs-1`` are the node's inputs, and step ``k`` (a
:class:`~graphc.ops.elemwise.ScalarOp` applied to earlier slots, with its output
dtype) fills slot ``n_inputs + k``. ``outputs`` lists the slots the node
returns. Optionally a reduction (a :class:`~graphc.ops.reduce.Reduce` op) is
applied to the single output, so ``sum(exp(x) * y)`` is one node.

All inputs have the same rank (Elemwise aligns ranks with DimShuffles before
fusion sees them) and broadcast as in NumPy; an output's shape is the broadcast
of the inputs it depends on. The reference ``perform`` evaluates the steps with
the scalar ops' NumPy implementations, casting each step to its dtype exactly as
:class:`~graphc.ops.elemwise.Elemwise` does, so a fused graph computes the very
same values as the unfused one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.graph.basic import Apply, Variable
from graphc.graph.op import Op
from graphc.graph.type import TensorType
from graphc.ops.elemwise import Elemwise, ScalarOp, broadcast_static_shapes
from graphc.tensor.basic import as_tensor_variable

Step = tuple[ScalarOp, tuple[int, ...], str]


class Fused(Op):
    """Elementwise steps over broadcast inputs, then an optional reduction of the output."""

    __props__ = ("n_inputs", "steps", "outputs", "reduce")

    def __init__(
        self, n_inputs: int, steps: Sequence[Step], outputs: Sequence[int], reduce: Op | None = None
    ) -> None:
        self.n_inputs = int(n_inputs)
        self.steps = tuple((sop, tuple(args), str(dtype)) for sop, args, dtype in steps)
        self.outputs = tuple(outputs)
        self.reduce = reduce
        for k, (_, args, _) in enumerate(self.steps):
            if any(not 0 <= a < self.n_inputs + k for a in args):
                raise ValueError(f"Fused: step {k} reads a slot that is not computed yet: {args}")
        if reduce is not None and len(self.outputs) != 1:
            raise ValueError("Fused: a reduction applies to a single output")

    # -- description -------------------------------------------------------------------
    def slot_names(self) -> list[str]:
        return [f"i{k}" for k in range(self.n_inputs)] + [f"t{k}" for k in range(len(self.steps))]

    def expression(self, slot: int, limit: int = 10_000) -> str:
        """The scalar formula of ``slot`` in terms of the inputs ``i0, i1, ...``; parts longer
        than ``limit`` characters are shown by their step name ``tK``."""
        texts = [f"i{k}" for k in range(self.n_inputs)]
        for k, (sop, args, _) in enumerate(self.steps[: max(0, slot - self.n_inputs + 1)]):
            t = f"{sop!r}({', '.join(texts[a] for a in args)})"
            texts.append(t if len(t) <= limit else f"t{k}")
        return texts[slot]

    def __str__(self) -> str:
        body = ", ".join(self.expression(o, 200) for o in self.outputs)
        if len(body) > 80:
            names: list[str] = []
            for sop, _, _ in self.steps:
                if sop.name not in names:
                    names.append(sop.name)
            body = f"{len(self.steps)} ops: {','.join(names)}"
        if self.reduce is not None:
            return f"Fused{{{self.reduce}: {body}}}"
        return f"Fused{{{body}}}"

    __repr__ = __str__

    # -- the hooks ---------------------------------------------------------------------
    def make_node(self, *inputs: Any) -> Apply:
        if len(inputs) != self.n_inputs:
            raise TypeError(f"Fused takes {self.n_inputs} inputs, got {len(inputs)}")
        ins = [as_tensor_variable(i) for i in inputs]
        if len({i.ndim for i in ins}) > 1:
            raise TypeError(f"Fused: inputs must have one rank, got {[i.ndim for i in ins]}")
        types = [i.type for i in ins]
        for sop, args, dtype in self.steps:
            arg_types = [types[a] for a in args]
            expected = sop.output_dtype([t.dtype for t in arg_types])
            if expected != dtype:
                raise TypeError(f"Fused: {sop!r} of {[t.dtype for t in arg_types]} gives {expected}, "
                                f"not {dtype}")
            shape = broadcast_static_shapes([t.shape for t in arg_types], sop.name)
            types.append(TensorType(dtype, shape))
        out_types = [types[o] for o in self.outputs]
        if self.reduce is not None:
            probe = self.reduce.make_node(Variable(out_types[0]))
            out_types = [probe.outputs[0].type]
        return Apply(self, ins, out_types)

    def evaluate(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The values of every slot (inputs first), as the unfused Elemwise nodes compute them."""
        values = list(inputs)
        for sop, args, dtype in self.steps:
            operands = [values[a] for a in args]
            with np.errstate(all="ignore"):
                result = np.asarray(sop.impl(*operands), dtype=dtype)
            shape = np.broadcast_shapes(*(np.shape(v) for v in operands))
            if result.shape != shape:
                result = np.broadcast_to(result, shape).copy()
            values.append(result)
        return values

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        values = self.evaluate(inputs)
        outs = [values[o] for o in self.outputs]
        if self.reduce is not None:
            # The fused node's output is the reduction's output, so it can stand for its node.
            outs = list(self.reduce.perform(node, outs))
        return outs

    def expand(self, inputs: Sequence[Variable]) -> list[Variable]:
        """The same computation as ordinary Elemwise (and Reduce) nodes on ``inputs``."""
        slots = list(inputs)
        for sop, args, _ in self.steps:
            slots.append(Elemwise(sop)(*[slots[a] for a in args]))
        outs = [slots[o] for o in self.outputs]
        if self.reduce is not None:
            outs = [self.reduce(outs[0])]
        return outs

    def L_op(self, inputs: Sequence[Variable], outputs: Sequence[Variable],
             output_grads: Sequence[Variable]) -> list[Any]:
        from graphc.gradient import grad

        expanded = self.expand(inputs)
        known = {e: g for e, g in zip(expanded, output_grads) if g is not None}
        return grad(None, list(inputs), known_grads=known, disconnected_inputs="ignore")
