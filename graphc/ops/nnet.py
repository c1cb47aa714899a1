"""Neural-network functions (``T.nnet``): activations, softmax and cross-entropies.

The elementwise activations are :class:`~graphc.ops.elemwise.ScalarOp` s inside
:class:`~graphc.ops.elemwise.Elemwise`, so fusion and the LLVM backend treat
them like any other scalar op. Softmax and log-softmax are ops over one axis.
Cross-entropy with integer labels picks one entry per row through
:class:`LabelPick`, whose gradient :class:`LabelScatter` is its adjoint, so
gradients of gradients stay inside these two ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.graph.basic import Apply, Variable
from graphc.graph.op import Op
from graphc.graph.type import TensorType
from graphc.ops.elemwise import (
    Elemwise,
    GradFn,
    ScalarOp,
    _rule_no_bool,
    add,
    and_,
    cast,
    elemwise_function,
    exp,
    gt,
    log,
    log1p,
    lt,
    mul,
    neg,
    sqr,
    sub,
    switch,
    true_div,
    upgrade_to_float,
)
from graphc.ops.elemwise import abs as abs_
from graphc.ops.registry import register
from graphc.tensor.basic import as_tensor_variable

__all__ = [
    "sigmoid", "hard_sigmoid", "softplus", "softsign", "relu", "elu", "softmax", "log_softmax",
    "categorical_crossentropy", "binary_crossentropy", "Softmax", "LogSoftmax", "LabelPick",
    "LabelScatter",
]

_FAMILY = "nnet"


def _scalar_function(
    name: str, impl: Callable[..., Any], doc: str, grad: GradFn,
    rule: Callable[..., str] = upgrade_to_float,
) -> Callable[..., Variable]:
    """A one-input elementwise function registered in the nnet family."""
    fn = elemwise_function(ScalarOp(name, impl, 1, rule, grad), doc)
    register(name, _FAMILY, True)
    return fn


# ---------------------------------------------------------------------------------------
# Elementwise activations
def _sigmoid_impl(x: np.ndarray) -> np.ndarray:
    # exp(-|x|) never overflows; the two branches are the same function rearranged.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus_impl(x: np.ndarray) -> np.ndarray:
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): no overflow for large x.
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


sigmoid = _scalar_function(
    "sigmoid", _sigmoid_impl, "The logistic function 1 / (1 + exp(-x)).",
    grad=lambda xs, z, gz: [mul(gz, z, sub(1.0, z))],
)
hard_sigmoid = _scalar_function(
    "hard_sigmoid", lambda x: np.clip(x * 0.2 + 0.5, 0, 1),
    "Piecewise-linear sigmoid, clip(0.2 * x + 0.5, 0, 1), as in Theano.",
    grad=lambda xs, z, gz: [mul(gz, 0.2, and_(gt(z, 0.0), lt(z, 1.0)))],
)
softplus = _scalar_function(
    "softplus", _softplus_impl, "log(1 + exp(x)), computed without overflow.",
    grad=lambda xs, z, gz: [mul(gz, sigmoid(xs[0]))],
)
softsign = _scalar_function(
    "softsign", lambda x: x / (1 + np.abs(x)), "x / (1 + |x|).",
    grad=lambda xs, z, gz: [true_div(gz, sqr(add(abs_(xs[0]), 1.0)))],
)


_PARAM_OPS: dict[tuple[str, float], Elemwise] = {}


def _relu_op(alpha: float) -> Elemwise:
    key = ("relu", alpha)
    if key not in _PARAM_OPS:
        sop = ScalarOp(
            "relu",
            lambda x: np.maximum(x, 0) if alpha == 0 else np.where(x > 0, x, alpha * x),
            1,
            _rule_no_bool if alpha == 0 else upgrade_to_float,
            # With alpha >= 0, z > 0 exactly where x > 0: testing the output lets a fused
            # forward kernel drop its pre-activation output (nothing else reads it).
            grad=lambda xs, z, gz: [switch(gt(z if alpha >= 0 else xs[0], 0), gz, mul(gz, alpha))],
            params=(alpha,),
        )
        _PARAM_OPS[key] = Elemwise(sop)
    return _PARAM_OPS[key]


def _elu_op(alpha: float) -> Elemwise:
    key = ("elu", alpha)
    if key not in _PARAM_OPS:
        sop = ScalarOp(
            "elu",
            # expm1 of the clipped input: the unused branch must not overflow.
            lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
            1,
            upgrade_to_float,
            # For x <= 0, d/dx alpha * (exp(x) - 1) = z + alpha.
            grad=lambda xs, z, gz: [switch(gt(xs[0], 0), gz, mul(gz, add(z, alpha)))],
            params=(alpha,),
        )
        _PARAM_OPS[key] = Elemwise(sop)
    return _PARAM_OPS[key]


def relu(x: Any, alpha: Any = 0) -> Variable:
    """Rectifier ``max(x, 0)``; with ``alpha`` the leaky form ``x if x > 0 else alpha * x``.

    ``alpha`` may be a Python number (one scalar op) or a tensor.
    """
    if isinstance(alpha, Variable):
        x = as_tensor_variable(x)
        return switch(gt(x, 0), x, mul(alpha, x))
    return _relu_op(float(alpha))(x)


def elu(x: Any, alpha: float = 1.0) -> Variable:
    """Exponential linear unit: ``x if x > 0 else alpha * (exp(x) - 1)``."""
    return _elu_op(float(alpha))(x)


register("relu", _FAMILY, True)
register("elu", _FAMILY, True)


# ---------------------------------------------------------------------------------------
# Softmax over an axis
def _float_input(x: Any, what: str) -> Variable:
    x = as_tensor_variable(x)
    if x.ndim == 0:
        raise TypeError(f"{what}: needs at least a 1-d input, got a scalar")
    if not x.type.is_float:
        x = cast(x, upgrade_to_float(x.dtype))
    return x


def _axis_sum(x: Variable, axis: int) -> Variable:
    from graphc.ops.reduce import sum as sum_

    return sum_(x, axis=axis, keepdims=True)


class Softmax(Op):
    """``exp(x) / sum(exp(x), axis)``, computed after subtracting the max along ``axis``."""

    __props__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def make_node(self, x: Any) -> Apply:
        x = as_tensor_variable(x)
        if not 0 <= self.axis < x.ndim or not x.type.is_float:
            raise TypeError(f"{self}: needs a float input with axis {self.axis}, got {x.type}")
        return Apply(self, [x], [x.type])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        (x,) = inputs
        e = np.exp(x - np.max(x, axis=self.axis, keepdims=True))
        return [e / np.sum(e, axis=self.axis, keepdims=True)]

    def L_op(self, inputs: Sequence[Variable], outputs: Sequence[Variable],
             grads: Sequence[Variable]) -> list[Variable]:
        (sm,), (gz,) = outputs, grads
        return [mul(sub(gz, _axis_sum(mul(gz, sm), self.axis)), sm)]


class LogSoftmax(Op):
    """``x - max - log(sum(exp(x - max), axis))``: log of softmax without underflow."""

    __props__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def make_node(self, x: Any) -> Apply:
        x = as_tensor_variable(x)
        if not 0 <= self.axis < x.ndim or not x.type.is_float:
            raise TypeError(f"{self}: needs a float input with axis {self.axis}, got {x.type}")
        return Apply(self, [x], [x.type])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        (x,) = inputs
        shifted = x - np.max(x, axis=self.axis, keepdims=True)
        return [shifted - np.log(np.sum(np.exp(shifted), axis=self.axis, keepdims=True))]

    def L_op(self, inputs: Sequence[Variable], outputs: Sequence[Variable],
             grads: Sequence[Variable]) -> list[Variable]:
        (lsm,), (gz,) = outputs, grads
        return [sub(gz, mul(exp(lsm), _axis_sum(gz, self.axis)))]


def _normalize_axis(axis: int, ndim: int, what: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what}: axis {axis} is out of range for a {ndim}-d input")
    return axis % ndim


def softmax(x: Any, axis: int = -1) -> Variable:
    """Softmax along ``axis`` (the last by default); stable for large inputs."""
    x = _float_input(x, "softmax")
    return Softmax(_normalize_axis(axis, x.ndim, "softmax"))(x)


def log_softmax(x: Any, axis: int = -1) -> Variable:
    """``log(softmax(x, axis))`` computed directly, without overflow or underflow."""
    x = _float_input(x, "log_softmax")
    return LogSoftmax(_normalize_axis(axis, x.ndim, "log_softmax"))(x)


register("softmax", _FAMILY, True)
register("log_softmax", _FAMILY, True)


# ---------------------------------------------------------------------------------------
# Picking one entry per row by integer label, and its adjoint
def _merge_shapes(a: Sequence[int | None], b: Sequence[int | None], what: str) -> tuple:
    out = []
    for p, q in zip(a, b):
        if p is not None and q is not None and p != q:
            raise ValueError(f"{what}: shapes {tuple(a)} and {tuple(b)} do not match")
        out.append(p if p is not None else q)
    return tuple(out)


def _check_labels(labels: np.ndarray, lead_shape: tuple, n_classes: int, what: str) -> None:
    if labels.shape != lead_shape:
        raise ValueError(f"{what}: labels of shape {labels.shape} do not match {lead_shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{what}: labels must lie in [0, {n_classes}), got values in "
            f"[{labels.min()}, {labels.max()}]"
        )


def _labels_variable(labels: Any, x: Variable, what: str) -> Variable:
    labels = as_tensor_variable(labels)
    if labels.type.is_float or labels.dtype == "bool":
        raise TypeError(f"{what}: labels must be integers, got {labels.dtype}")
    if labels.ndim != x.ndim - 1:
        raise TypeError(f"{what}: labels must be {x.ndim - 1}-d for a {x.ndim}-d input, "
                        f"got {labels.ndim}-d")
    return labels


class LabelPick(Op):
    """``out[..., ] = x[..., labels[...]]``: one entry of the last axis per row."""

    def make_node(self, x: Any, labels: Any) -> Apply:
        x = as_tensor_variable(x)
        if x.ndim < 1:
            raise TypeError("LabelPick: needs at least a 1-d input")
        labels = _labels_variable(labels, x, "LabelPick")
        shape = _merge_shapes(x.type.shape[:-1], labels.type.shape, "LabelPick")
        return Apply(self, [x, labels], [TensorType(x.dtype, shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        x, labels = inputs
        _check_labels(labels, x.shape[:-1], x.shape[-1], "LabelPick")
        picked = np.take_along_axis(x, labels[..., None].astype(np.intp), axis=-1)[..., 0]
        return [np.ascontiguousarray(picked)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        x, labels = inputs
        return [LabelScatter()(grads[0], labels, x), None]


class LabelScatter(Op):
    """Zeros shaped like ``like`` with ``g[...]`` at ``[..., labels[...]]`` (LabelPick's adjoint)."""

    def make_node(self, g: Any, labels: Any, like: Any) -> Apply:
        g, like = as_tensor_variable(g), as_tensor_variable(like)
        labels = _labels_variable(labels, like, "LabelScatter")
        _merge_shapes(g.type.shape, like.type.shape[:-1], "LabelScatter")
        return Apply(self, [g, labels, like], [TensorType(g.dtype, like.type.shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        g, labels, like = inputs
        _check_labels(labels, like.shape[:-1], like.shape[-1], "LabelScatter")
        if g.shape != labels.shape:
            raise ValueError(f"LabelScatter: gradient shape {g.shape} != labels shape {labels.shape}")
        out = np.zeros(like.shape, dtype=node.outputs[0].dtype)
        np.put_along_axis(out, labels[..., None].astype(np.intp), g[..., None], axis=-1)
        return [out]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        g, labels, like = inputs
        return [LabelPick()(grads[0], labels), None, None]


# ---------------------------------------------------------------------------------------
# Cross-entropies
def categorical_crossentropy(coding_dist: Any, true_dist: Any) -> Variable:
    """Per-row cross-entropy ``-sum(true_dist * log(coding_dist), axis=-1)``.

    ``true_dist`` is either a distribution (e.g. one-hot) shaped like
    ``coding_dist``, or integer class labels with one dimension less, in which
    case the result is ``-log(coding_dist[i, true_dist[i]])`` (Theano semantics).
    """
    coding = _float_input(coding_dist, "categorical_crossentropy")
    true = as_tensor_variable(true_dist)
    if true.ndim == coding.ndim:
        if true.dtype != coding.dtype and not true.type.is_float:
            true = cast(true, coding.dtype)
        from graphc.ops.reduce import sum as sum_

        return neg(sum_(mul(true, log(coding)), axis=-1))
    if true.ndim == coding.ndim - 1:
        return neg(log(LabelPick()(coding, true)))
    raise TypeError(
        f"categorical_crossentropy: true_dist must have the shape of coding_dist ({coding.ndim}-d) "
        f"or be integer labels ({coding.ndim - 1}-d); got a {true.ndim}-d tensor"
    )


def binary_crossentropy(output: Any, target: Any) -> Variable:
    """Elementwise ``-(target * log(output) + (1 - target) * log(1 - output))``.

    For ``output = sigmoid(x)`` this is :func:`sigmoid_binary_crossentropy` of ``x``, built
    as that one op (as TensorFlow/Keras do): stable for any ``x``, and its gradient is
    ``(sigmoid(x) - target) * g`` rather than a chain of divisions by probabilities.
    """
    output = as_tensor_variable(output)
    target = as_tensor_variable(target)
    if output.owner is not None and isinstance(output.owner.op, Elemwise) \
            and output.owner.op.scalar_op.name == "sigmoid":
        return sigmoid_binary_crossentropy(output.owner.inputs[0], target)
    if not target.type.is_float:
        target = cast(target, output.dtype if output.type.is_float else upgrade_to_float(output.dtype))
    return neg(add(mul(target, log(output)), mul(sub(1.0, target), log1p(neg(output)))))


register("categorical_crossentropy", _FAMILY, True)
register("binary_crossentropy", _FAMILY, True)


# The cross-entropies of logits as single ops live beside (kept out of this file's length).
from graphc.ops.nnet_xent import (  # noqa: E402
    CrossentropySoftmax,
    crossentropy_softmax,
    sigmoid_binary_crossentropy,
)

__all__ += ["CrossentropySoftmax", "crossentropy_softmax", "sigmoid_binary_crossentropy"]
