"""Cross-entropies of logits as single, numerically stable ops (re-exported by ``T.nnet``).

- :class:`CrossentropySoftmax`: per-row ``-sum(t * log_softmax(x))`` of 2-d logits ``x``,
  with ``t`` either integer class labels (1-d: ``-log_softmax(x)[i, t[i]]``) or a matrix of
  targets (one-hot or any weights) broadcastable against ``x``. Its second output is
  ``softmax(x)``: the gradient ``(softmax(x) * sum(t) - t) * g`` needs it, and computing
  both in one pass over the row (max, sum of exp) shares that work, as Theano's
  ``crossentropy_softmax_argmax_1hot_with_bias`` did.
- ``sigmoid_binary_crossentropy(x, t)``: ``softplus(x) - t * x`` elementwise, computed as
  ``max(x, 0) - t * x + log1p(exp(-|x|))`` (no overflow, no cancellation). It is a scalar op
  inside :class:`~graphc.ops.elemwise.Elemwise`: it broadcasts its targets like any other,
  and fusion merges it with the mean that usually follows and with its gradient
  ``(sigmoid(x) - t) * g``, which a whole-array op would stop.

The stabilize phase (graphc.rewrite.stabilize_xent) turns the cross-entropies users write
(``categorical_crossentropy(softmax(x), y)``, ``-sum(t * log_softmax(x))``,
``binary_crossentropy(sigmoid(x), t)``) into these ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.op import Op
from graphc.graph.type import TensorType
from graphc.ops.dimshuffle import DimShuffle
from graphc.ops.elemwise import (
    Elemwise,
    ScalarOp,
    add,
    broadcast_static_shapes,
    cast,
    mul,
    neg,
    second,
    sub,
    sum_to_shape,
    upgrade_to_float,
    zeros_like,
)
from graphc.ops.registry import register
from graphc.tensor.basic import as_tensor_variable

__all__ = ["CrossentropySoftmax", "crossentropy_softmax", "sigmoid_binary_crossentropy",
           "SIGMOID_BINARY_CROSSENTROPY"]

_FAMILY = "nnet"
_NAME = "CrossentropySoftmax"


def _is_zero(var: Variable) -> bool:
    """``var`` is a constant zero or ``zeros_like(...)`` (a disconnected output's gradient)."""
    while var.owner is not None:
        op = var.owner.op
        if isinstance(op, Elemwise) and op.scalar_op.name == "second":
            var = var.owner.inputs[1]
        elif isinstance(op, DimShuffle):
            var = var.owner.inputs[0]
        else:
            return False
    return isinstance(var, Constant) and not np.any(var.data)


def _rowwise(v: Variable) -> Variable:
    """A per-row vector as a column, to broadcast against the classes axis."""
    return DimShuffle(1, [0, "x"])(v)


class CrossentropySoftmax(Op):
    """``(loss, softmax(x))`` with ``loss[i] = -sum_j t[i, j] * log_softmax(x)[i, j]``, or
    ``-log_softmax(x)[i, t[i]]`` for integer labels ``t``; see the module docstring."""

    __props__ = ()

    def make_node(self, x: Any, t: Any) -> Apply:
        x, t = as_tensor_variable(x), as_tensor_variable(t)
        if x.ndim != 2 or not x.type.is_float:
            raise TypeError(f"{_NAME}: logits must be a float matrix, got {x.type}")
        if t.ndim == 1:
            if t.type.is_float or t.dtype == "bool":
                raise TypeError(f"{_NAME}: 1-d targets must be integer labels, got {t.dtype}")
            if None not in (x.type.shape[0], t.type.shape[0]) and x.type.shape[0] != t.type.shape[0]:
                raise ValueError(f"{_NAME}: {t.type.shape[0]} labels for {x.type.shape[0]} rows")
            rows = x.type.shape[0] if x.type.shape[0] is not None else t.type.shape[0]
        elif t.ndim == 2:
            if t.dtype != x.dtype:
                raise TypeError(f"{_NAME}: targets must have the logits' dtype {x.dtype}, got {t.dtype}")
            rows = broadcast_static_shapes([x.type.shape, t.type.shape], _NAME)[0]
        else:
            raise TypeError(f"{_NAME}: targets must be 1-d labels or a matrix, got {t.ndim}-d")
        return Apply(self, [x, t], [TensorType(x.dtype, (rows,)), x.type])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        x, t = inputs
        if x.shape[1] == 0:
            raise ValueError(f"{_NAME}: logits of shape {x.shape} have no class")
        if t.ndim == 1:
            from graphc.ops.nnet import _check_labels

            _check_labels(t, x.shape[:1], x.shape[1], _NAME)
        shifted = x - np.max(x, axis=1, keepdims=True)
        e = np.exp(shifted)
        total = np.sum(e, axis=1, keepdims=True)
        sm = e / total
        lse = np.log(total)
        if t.ndim == 1:
            picked = np.take_along_axis(shifted, t[:, None].astype(np.intp), axis=1)
            loss = (lse - picked)[:, 0]
        else:
            try:
                shape = np.broadcast_shapes(x.shape, t.shape)
            except ValueError:
                raise ValueError(f"{_NAME}: targets of shape {t.shape} do not broadcast against "
                                 f"logits of shape {x.shape}") from None
            lsm = np.broadcast_to(shifted - lse, shape)
            loss = -np.sum(np.broadcast_to(t, shape) * lsm, axis=1)
        dt = node.outputs[0].dtype
        return [np.ascontiguousarray(loss, dtype=dt), np.ascontiguousarray(sm, dtype=dt)]

    def L_op(self, inputs: Sequence[Variable], outputs: Sequence[Variable],
             grads: Sequence[Variable]) -> list[Any]:
        from graphc.ops.nnet import LabelScatter, LogSoftmax, _axis_sum

        x, t = inputs
        _, sm = outputs
        g_loss, g_sm = grads
        terms = []
        g_t: Any = None
        if not _is_zero(g_loss):
            g = cast(g_loss, x.dtype)
            if t.ndim == 1:
                # d loss / dx = softmax - onehot(t): the scatter subtracts g at each label.
                terms.append(sub(mul(sm, _rowwise(g)), LabelScatter()(g, t, x)))
            else:
                tt = second(x, t)  # t broadcast to the loss's rows and the classes
                terms.append(sum_to_shape(mul(sub(mul(sm, _axis_sum(tt, 1)), tt), _rowwise(g)), x))
                g_t = sum_to_shape(neg(mul(LogSoftmax(1)(x), _rowwise(g))), t)
        if not _is_zero(g_sm):  # softmax's own gradient, for graphs that use that output
            g = cast(g_sm, x.dtype)
            terms.append(mul(sub(g, _axis_sum(mul(g, sm), 1)), sm))
        if not terms:
            terms.append(zeros_like(x))
        gx = terms[0] if len(terms) == 1 else add(*terms)
        if t.ndim == 1:
            return [gx, None]
        if g_t is None:
            g_t = zeros_like(t)
        return [gx, g_t]


def crossentropy_softmax(logits: Any, targets: Any) -> Variable:
    """Per-row ``-sum(targets * log_softmax(logits), axis=1)`` of a logits matrix, in one
    stable op; ``targets`` are integer labels (a vector) or a matrix (one-hot or weights)."""
    from graphc.ops.nnet import _float_input

    x = _float_input(logits, "crossentropy_softmax")
    t = as_tensor_variable(targets)
    if t.ndim == 2 and t.dtype != x.dtype:
        t = cast(t, x.dtype)
    return CrossentropySoftmax()(x, t)[0]


register("crossentropy_softmax", _FAMILY, True)


# ---------------------------------------------------------------------------------------
def _sbce_impl(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    # softplus(x) - t * x with softplus(x) = max(x, 0) + log1p(exp(-|x|)): for t = 1 and a
    # large x the max cancels t * x exactly and the small log1p term survives. All of it in
    # the result's dtype (float32 logits with float64 targets: float64 throughout).
    dt = upgrade_to_float(np.asarray(x).dtype.name, np.asarray(t).dtype.name)
    x, t = np.asarray(x, dtype=dt), np.asarray(t, dtype=dt)
    return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))


def _sbce_grad(xs: Sequence[Variable], z: Variable, gz: Variable) -> list[Variable]:
    from graphc.ops.nnet import sigmoid

    x, t = xs
    return [mul(gz, sub(sigmoid(x), t)), mul(gz, neg(x))]


SIGMOID_BINARY_CROSSENTROPY = Elemwise(ScalarOp(
    "sigmoid_binary_crossentropy", _sbce_impl, 2, upgrade_to_float, _sbce_grad))


def sigmoid_binary_crossentropy(logits: Any, targets: Any) -> Variable:
    """Elementwise ``binary_crossentropy(sigmoid(logits), targets)``, i.e.
    ``softplus(logits) - targets * logits``, without overflow for any logit."""
    x = as_tensor_variable(logits)
    t = as_tensor_variable(targets)
    if not x.type.is_float:
        x = cast(x, upgrade_to_float(x.dtype))
    if not t.type.is_float:
        t = cast(t, x.dtype)
    return SIGMOID_BINARY_CROSSENTROPY(x, t)


register("sigmoid_binary_crossentropy", _FAMILY, True)
