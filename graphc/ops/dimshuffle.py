"""DimShuffle: reorder axes, insert broadcastable axes ('x') and drop length-1 axes.

It underlies ``transpose`` and the implicit rank alignment of elementwise ops.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphc.graph.basic import Apply, Variable
from graphc.graph.op import Op
from graphc.graph.type import TensorType
from graphc.ops.registry import register
from graphc.tensor.basic import as_tensor_variable

__all__ = ["dimshuffle", "transpose", "DimShuffle"]


class DimShuffle(Op):
    """``new_order`` lists input axes (ints) and ``'x'`` for new length-1 axes.

    Input axes left out are dropped; they must have length 1 (checked at build
    time when the static shape is known, otherwise when the function runs).
    """

    __props__ = ("input_ndim", "new_order")

    def __init__(self, input_ndim: int, new_order: Sequence[int | str]) -> None:
        order = tuple(o if o == "x" else int(o) for o in new_order)
        used = [o for o in order if o != "x"]
        if len(set(used)) != len(used) or any(not 0 <= o < input_ndim for o in used):
            raise ValueError(f"dimshuffle: invalid pattern {order} for a {input_ndim}-d input")
        self.input_ndim = input_ndim
        self.new_order = order
        self.dropped = tuple(i for i in range(input_ndim) if i not in used)
        self.kept = tuple(used)

    def make_node(self, x: Variable) -> Apply:
        x = as_tensor_variable(x)
        if x.ndim != self.input_ndim:
            raise TypeError(f"{self}: expected a {self.input_ndim}-d input, got {x.ndim}-d")
        for d in self.dropped:
            if x.type.shape[d] not in (1, None):
                raise ValueError(
                    f"dimshuffle {self.new_order}: cannot drop axis {d} of static length "
                    f"{x.type.shape[d]} (only length-1 axes can be dropped)"
                )
        shape = tuple(1 if o == "x" else x.type.shape[o] for o in self.new_order)
        return Apply(self, [x], [TensorType(x.dtype, shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        (x,) = inputs
        for d in self.dropped:
            if x.shape[d] != 1:
                raise ValueError(f"dimshuffle: axis {d} has length {x.shape[d]}, not 1; cannot drop it")
        y = np.transpose(x, self.kept + self.dropped)
        out_shape = tuple(1 if o == "x" else x.shape[o] for o in self.new_order)
        return [y.reshape(out_shape)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Variable]:
        (gz,) = grads
        # Inverse pattern: each input axis comes back from its output position; dropped
        # axes return as new length-1 axes; the output's 'x' axes are dropped.
        order = [self.new_order.index(i) if i in self.kept else "x" for i in range(self.input_ndim)]
        return [DimShuffle(len(self.new_order), order)(gz)]

    def __str__(self) -> str:
        return f"DimShuffle{{{','.join(map(str, self.new_order))}}}"


register("dimshuffle", "shape")
register("transpose", "shape")


def dimshuffle(x: object, *pattern: int | str) -> Variable:
    """``x.dimshuffle(1, 'x', 0)``; a single list or tuple pattern is accepted too."""
    x = as_tensor_variable(x)
    if len(pattern) == 1 and isinstance(pattern[0], list | tuple):
        pattern = tuple(pattern[0])
    if tuple(pattern) == tuple(range(x.ndim)):
        return x
    return DimShuffle(x.ndim, pattern)(x)


def transpose(x: object, *axes: int) -> Variable:
    """Reverse the axes (or permute them by ``axes``), like ``numpy.transpose``."""
    x = as_tensor_variable(x)
    if len(axes) == 1 and isinstance(axes[0], list | tuple):
        axes = tuple(axes[0])
    if not axes:
        axes = tuple(reversed(range(x.ndim)))
    if any(not -x.ndim <= a < x.ndim for a in axes):
        raise ValueError(f"transpose: axes {axes} out of range for a {x.ndim}-d tensor")
    axes = tuple(a % x.ndim for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: {axes} is not a permutation of the {x.ndim} axes")
    return dimshuffle(x, *axes)
