"""Reverse-mode symbolic differentiation: ``grad``, ``jacobian``, ``hessian``, ``verify_grad``.

Gradients are graphs built from each op's ``L_op`` (defined beside the op), so
they can be differentiated again.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from graphc.graph.basic import Variable, io_toposort
from graphc.graph.op import NullGrad
from graphc.tensor.basic import as_tensor_variable


class DisconnectedInputError(ValueError):
    """The cost does not depend on a variable we were asked to differentiate against."""


class NullTypeGradError(TypeError):
    """A gradient that is mathematically undefined was needed."""


def grad(
    cost: Variable | None,
    wrt: Variable | Sequence[Variable],
    consider_constant: Sequence[Variable] | None = None,
    disconnected_inputs: str = "raise",
    known_grads: Mapping[Variable, Any] | None = None,
) -> Any:
    """Gradient of the scalar ``cost`` with respect to ``wrt`` (a variable or a list).

    ``known_grads`` seeds gradients of intermediate variables (then ``cost`` may be
    None); ``consider_constant`` variables are treated as constants.
    """
    from graphc.ops.elemwise import cast, ones_like, zeros_like

    single = not isinstance(wrt, list | tuple)
    wrt_list = [wrt] if single else list(wrt)
    for w in wrt_list:
        if not isinstance(w, Variable):
            raise TypeError(f"grad: wrt must be symbolic variables, got {type(w).__name__}")
    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError("disconnected_inputs must be 'raise', 'warn' or 'ignore'")

    grads: dict[Variable, Any] = {}
    if cost is not None:
        cost = as_tensor_variable(cost)
        if cost.ndim != 0:
            raise TypeError(f"grad: the cost must be a scalar, got a {cost.ndim}-d tensor ({cost.type})")
        if not cost.type.is_float:
            raise TypeError(
                f"grad: the cost has dtype {cost.dtype}; an integer or boolean cost is not "
                f"differentiable (cast it to a float dtype if that is what you mean)"
            )
        grads[cost] = ones_like(cost)
    for var, g in (known_grads or {}).items():
        g = as_tensor_variable(g)
        grads[var] = cast(g, var.dtype) if var.type.is_float else g
    if not grads:
        raise ValueError("grad: give a cost or known_grads")

    constants = set(consider_constant or ())
    # Only nodes on a path from some wrt to a seeded variable matter.
    order = io_toposort(list(grads), blockers=constants)
    depends: set[Variable] = set(wrt_list)
    relevant = []
    for node in order:
        if any(i in depends for i in node.inputs):
            depends.update(node.outputs)
            relevant.append(node)

    used_by_relevant = {i for node in relevant for i in node.inputs} | set(grads)
    for node in reversed(relevant):
        out_grads = [grads.get(o) for o in node.outputs]
        if all(g is None for g in out_grads):
            continue
        for g in out_grads:
            if isinstance(g, NullGrad):
                raise NullTypeGradError(g.message())
        out_grads = [
            g if g is not None else zeros_like(o, dtype=o.dtype if o.type.is_float else "float64")
            for o, g in zip(node.outputs, out_grads)
        ]
        input_grads = node.op.L_op(node.inputs, node.outputs, out_grads)
        if len(input_grads) != len(node.inputs):
            raise RuntimeError(f"{node.op}.L_op returned {len(input_grads)} gradients for "
                               f"{len(node.inputs)} inputs")
        for inp, g in zip(node.inputs, input_grads):
            if g is None or inp not in depends or inp in constants:
                continue
            if not isinstance(g, NullGrad):
                g = as_tensor_variable(g)
                if inp.type.is_float and g.dtype != inp.dtype:
                    g = cast(g, inp.dtype)
            prev = grads.get(inp)
            if prev is None or isinstance(g, NullGrad):
                grads[inp] = g
            elif not isinstance(prev, NullGrad):
                grads[inp] = prev + g

    results = []
    for w in wrt_list:
        g = grads.get(w)
        if isinstance(g, NullGrad):
            raise NullTypeGradError(g.message())
        if g is None and not w.type.is_float and w in used_by_relevant:
            # The cost depends on an integer input: its gradient is zero, as in Theano.
            g = zeros_like(w, dtype="float64")
        if g is None:
            message = (
                f"grad: the cost does not depend on {w!r}; pass disconnected_inputs='ignore' or "
                f"'warn' to get a zero gradient"
            )
            if disconnected_inputs == "raise":
                raise DisconnectedInputError(message)
            if disconnected_inputs == "warn":
                warnings.warn(message, stacklevel=2)
            g = zeros_like(w, dtype=w.dtype if w.type.is_float else "float64")
        elif not w.type.is_float:
            # Integer inputs have zero gradient, as in Theano.
            g = zeros_like(w, dtype="float64")
        results.append(g)
    return results[0] if single else results


def jacobian(
    expression: Variable, wrt: Variable | Sequence[Variable], disconnected_inputs: str = "raise"
) -> Any:
    """``J[i, ...] = d expression[i] / d wrt`` for a vector (or scalar) ``expression``.

    Rows are computed by mapping the gradient of one element over the indices.
    """
    from graphc.ops.control import map_over_indices
    from graphc.ops.shape import shape

    expression = as_tensor_variable(expression)
    single = not isinstance(wrt, list | tuple)
    wrt_list = [wrt] if single else list(wrt)
    if expression.ndim == 0:
        out = [grad(expression, w, disconnected_inputs=disconnected_inputs) for w in wrt_list]
        return out[0] if single else out
    flat = expression.flatten()
    results = []
    for w in wrt_list:
        results.append(
            map_over_indices(
                lambda i, w=w: grad(flat[i], w, disconnected_inputs=disconnected_inputs),
                shape(flat)[0],
            )
        )
    return results[0] if single else results


def hessian(cost: Variable, wrt: Variable | Sequence[Variable], disconnected_inputs: str = "raise") -> Any:
    """The matrix of second derivatives of the scalar ``cost`` w.r.t. each vector in ``wrt``."""
    single = not isinstance(wrt, list | tuple)
    wrt_list = [wrt] if single else list(wrt)
    out = []
    for w in wrt_list:
        if w.ndim != 1:
            raise TypeError(f"hessian: wrt must be vectors, {w!r} is {w.ndim}-d")
        g = grad(cost, w, disconnected_inputs=disconnected_inputs)
        out.append(jacobian(g, w, disconnected_inputs=disconnected_inputs))
    return out[0] if single else out


class GradientError(AssertionError):
    """``verify_grad`` found a symbolic gradient that disagrees with finite differences."""


def numeric_grad(f: Callable[..., float], point: list[np.ndarray], eps: float) -> list[np.ndarray]:
    """Central finite differences of the scalar function ``f`` at ``point``."""
    grads = []
    for x in point:
        g = np.zeros_like(x, dtype="float64")
        flat_x, flat_g = x.reshape(-1), g.reshape(-1)
        for j in range(flat_x.size):
            orig = flat_x[j]
            flat_x[j] = orig + eps
            plus = f(*point)
            flat_x[j] = orig - eps
            minus = f(*point)
            flat_x[j] = orig
            flat_g[j] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def verify_grad(
    fun: Callable[..., Variable],
    pt: Sequence[Any],
    n_tests: int = 2,
    rng: np.random.Generator | None = None,
    eps: float = 1e-6,
    abs_tol: float = 1e-6,
    rel_tol: float = 1e-5,
    mode: str | None = "PY",
) -> None:
    """Check ``grad`` of ``fun(*inputs)`` against central finite differences, in float64.

    ``fun`` builds a graph from symbolic inputs shaped like the arrays in ``pt``;
    the output is projected on a random tensor so every element is checked.
    Raises :class:`GradientError` naming the input that disagrees.
    """
    from graphc.compile.function import function
    from graphc.tensor.basic import tensor

    rng = rng if rng is not None else np.random.default_rng(42)
    point = [np.array(p, dtype="float64") for p in pt]
    inputs = [tensor("float64", shape=(None,) * p.ndim, name=f"x{k}") for k, p in enumerate(point)]
    out = as_tensor_variable(fun(*inputs))
    if not out.type.is_float:
        raise TypeError(f"verify_grad: fun returned dtype {out.dtype}; it must be a float")
    out_fn = function(inputs, out, mode=mode)
    out_shape = np.shape(out_fn(*point))
    for _ in range(n_tests):
        projection = rng.uniform(-1.0, 1.0, size=out_shape) + 0.5
        proj = as_tensor_variable(np.asarray(projection, dtype="float64"))
        cost = (out.astype("float64") * proj).sum()
        cost_fn = function(inputs, cost, mode=mode)
        symbolic = function(inputs, grad(cost, inputs, disconnected_inputs="ignore"), mode=mode)(*point)
        numeric = numeric_grad(lambda *xs, f=cost_fn: float(f(*xs)), [p.copy() for p in point], eps)
        for k, (s, n) in enumerate(zip(symbolic, numeric)):
            err = np.abs(np.asarray(s, dtype="float64") - n)
            tol = abs_tol + rel_tol * np.abs(n)
            # Finite differences themselves are only good to about eps**2 * f''' and noise/eps.
            tol = tol + 1e-6 * np.maximum(1.0, np.abs(n))
            if np.any(err > tol):
                worst = int(np.argmax(err - tol))
                raise GradientError(
                    f"verify_grad: gradient of input {k} disagrees with finite differences "
                    f"(max abs error {err.max():.3g} at flat index {worst}; symbolic "
                    f"{np.ravel(s)[worst]:.6g}, numeric {np.ravel(n)[worst]:.6g})"
                )
