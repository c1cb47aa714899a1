"""Gemm: ``beta * C + alpha * dot(A, B)`` as one op, introduced by the specialize phase.

``A`` and ``B`` are 1-d or 2-d as for :class:`~graphc.ops.linalg.Dot`; ``alpha`` and
``beta`` are 0-d; ``C`` has the rank of the product and broadcasts against it (a
bias row ``b[None, :]`` is a valid ``C``). All operands share one float dtype. It
is not in place: the result is a new array (the LLVM backend maps it to BLAS
gemm/gemv on a copy of ``C``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.graph.basic import Apply, Variable
from graphc.graph.op import Op
from graphc.graph.type import TensorType
from graphc.ops.elemwise import broadcast_static_shapes
from graphc.tensor.basic import as_tensor_variable


class Gemm(Op):
    """``Gemm()(C, alpha, A, B, beta) = beta * C + alpha * dot(A, B)``."""

    def make_node(self, c: Any, alpha: Any, a: Any, b: Any, beta: Any) -> Apply:
        c, alpha, a, b, beta = (as_tensor_variable(v) for v in (c, alpha, a, b, beta))
        if a.ndim not in (1, 2) or b.ndim not in (1, 2):
            raise TypeError(f"Gemm: A and B must be 1-d or 2-d, got {a.ndim}-d and {b.ndim}-d")
        if alpha.ndim != 0 or beta.ndim != 0:
            raise TypeError("Gemm: alpha and beta must be scalars")
        dtypes = {v.dtype for v in (c, alpha, a, b, beta)}
        if len(dtypes) != 1 or not c.type.is_float:
            raise TypeError(f"Gemm: all operands need one float dtype, got {sorted(dtypes)}")
        ka, kb = a.type.shape[-1], b.type.shape[0]
        if ka is not None and kb is not None and ka != kb:
            raise ValueError(f"Gemm: shapes {a.type.shape} and {b.type.shape} are not aligned")
        dot_shape = a.type.shape[:-1] + b.type.shape[1:]
        if c.ndim != len(dot_shape):
            raise TypeError(f"Gemm: C must be {len(dot_shape)}-d, got {c.ndim}-d")
        shape = broadcast_static_shapes([dot_shape, c.type.shape], "gemm")
        return Apply(self, [c, alpha, a, b, beta], [TensorType(c.dtype, shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        c, alpha, a, b, beta = inputs
        if a.shape[-1] != b.shape[0]:
            raise ValueError(f"dot: shapes {a.shape} and {b.shape} are not aligned")
        d = np.dot(a, b)
        # Skipping a multiplication by 1 keeps results bitwise equal to dot + C.
        if alpha != 1:
            d = alpha * d
        scaled = c if beta == 1 else beta * c
        out = np.add(scaled, d) if c.ndim else scaled + d
        return [np.asarray(out, dtype=node.outputs[0].dtype)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        from graphc.ops import elemwise as E
        from graphc.ops.linalg import Dot

        c, alpha, a, b, beta = inputs
        gz = grads[0]
        dot_ab = Dot()(a, b)
        ga_b = Dot().grad([a, b], [E.sum_to_shape(E.mul(gz, alpha), dot_ab)])
        return [
            E.sum_to_shape(E.mul(gz, beta), c),
            _sum_all(E.mul(gz, dot_ab)),
            ga_b[0], ga_b[1],
            _sum_all(E.mul(gz, c)),
        ]


def _sum_all(x: Variable) -> Variable:
    from graphc.ops.reduce import sum as sum_

    return sum_(x)
