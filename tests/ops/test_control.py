"""ifelse (lazy) vs switch (elementwise, eager); jacobian and hessian built on map_over_indices."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.reference import NodeRuntimeError
from graphc.gradient import hessian, jacobian, numeric_grad, verify_grad
from graphc.graph.basic import Apply, Variable
from graphc.graph.op import Op
from graphc.graph.type import TensorType
from graphc.tensor.basic import as_tensor_variable

CALLS: Counter = Counter()


class Counted(Op):
    """Identity that counts how often it runs (``tag`` tells instances apart)."""

    __props__ = ("tag",)

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def make_node(self, x: object) -> Apply:
        x = as_tensor_variable(x)
        return Apply(self, [x], [TensorType(x.dtype, x.type.shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        CALLS[self.tag] += 1
        return [np.array(inputs[0], copy=True)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Variable]:
        return [grads[0]]


class Explode(Op):
    """Fails whenever it runs: proof that a branch was not evaluated."""

    def make_node(self, x: object) -> Apply:
        x = as_tensor_variable(x)
        return Apply(self, [x], [TensorType(x.dtype, x.type.shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise ValueError("this branch must not run")


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


def run(inputs: list, outputs: object, *values: object) -> object:
    return graphc.function(inputs, outputs, mode="PY")(*values)


# ---------------------------------------------------------------------------------------
# ifelse: values, types and errors


@pytest.mark.parametrize("cond_type", [T.iscalar, T.bscalar, T.dscalar,
                                       lambda name: T.tensor("bool", (), name)])
def test_ifelse_selects_a_branch(cond_type: Callable) -> None:
    c = cond_type("c")
    x = T.dvector("x")
    out = graphc.ifelse(c, x * 2.0, x - 1.0)
    assert out.dtype == "float64" and out.type.shape == (None,)
    f = graphc.function([c, x], out, mode="PY")
    v = np.array([1.0, 2.0])
    np.testing.assert_array_equal(f(1, v), v * 2)
    np.testing.assert_array_equal(f(0, v), v - 1)


def test_ifelse_on_a_symbolic_comparison() -> None:
    x = T.dvector("x")
    out = graphc.ifelse(x.sum() > 0, x, -x)
    f = graphc.function([x], out, mode="PY")
    np.testing.assert_array_equal(f(np.array([1.0, 2.0])), [1.0, 2.0])
    np.testing.assert_array_equal(f(np.array([-1.0, -2.0])), [1.0, 2.0])


def test_ifelse_types() -> None:
    c = T.iscalar("c")
    assert graphc.ifelse(c, T.fvector(), T.dvector()).dtype == "float64"
    assert graphc.ifelse(c, T.ivector(), T.fvector()).dtype == "float64"
    a3, b3, b4 = (T.tensor("float32", shape=s) for s in [(3,), (3,), (4,)])
    assert graphc.ifelse(c, a3, b3).type.shape == (3,)
    assert graphc.ifelse(c, a3, b4).type.shape == (None,)
    # Python scalars are weak: they take the dtype of the other branch.
    assert graphc.ifelse(c, T.fscalar(), 0.0).dtype == "float32"
    assert graphc.ifelse(c, 1, T.iscalar()).dtype == "int32"


def test_ifelse_errors() -> None:
    c = T.iscalar("c")
    with pytest.raises(TypeError, match="condition must be a scalar"):
        graphc.ifelse(T.ivector("v"), T.fscalar(), T.fscalar())
    with pytest.raises(TypeError, match="branches differ"):
        graphc.ifelse(c, T.fvector(), T.fmatrix())
    with pytest.raises(ValueError, match="2 values in the then branch, 1 in the else branch"):
        graphc.ifelse(c, [T.fscalar(), T.fscalar()], [T.fscalar()])


def test_ifelse_with_lists_of_outputs() -> None:
    c = T.iscalar("c")
    x, y = T.dvector("x"), T.dmatrix("y")
    outs = graphc.ifelse(c, [x + 1.0, y * 2.0, x.sum()], [x - 1.0, y.T, y.sum()])
    assert isinstance(outs, list) and len(outs) == 3
    assert [o.type.shape for o in outs] == [(None,), (None, None), ()]
    tuple_outs = graphc.ifelse(c, (x, y), (x * 0.0, y * 0.0))
    assert len(tuple_outs) == 2
    f = graphc.function([c, x, y], outs, mode="PY")
    vx, vy = np.arange(3.0), np.arange(4.0).reshape(2, 2)
    a, b, s = f(1, vx, vy)
    np.testing.assert_array_equal(a, vx + 1)
    np.testing.assert_array_equal(b, vy * 2)
    assert s == vx.sum()
    a, b, s = f(0, vx, vy)
    np.testing.assert_array_equal(a, vx - 1)
    np.testing.assert_array_equal(b, vy.T)
    assert s == vy.sum()


def test_nested_ifelse() -> None:
    a, b = T.iscalar("a"), T.iscalar("b")
    x = T.dscalar("x")
    out = graphc.ifelse(a, graphc.ifelse(b, x * 1.0, x * 2.0), graphc.ifelse(b, x * 3.0, x * 4.0))
    f = graphc.function([a, b, x], out, mode="PY")
    assert [float(f(i, j, 1.0)) for i in (1, 0) for j in (1, 0)] == [1.0, 2.0, 3.0, 4.0]


# ---------------------------------------------------------------------------------------
# laziness


def test_ifelse_evaluates_only_the_taken_branch() -> None:
    c = T.iscalar("c")
    x = T.dvector("x")
    out = graphc.ifelse(c, T.exp(Counted("then")(x)), T.sin(Counted("else")(x)) * 2.0)
    f = graphc.function([c, x], out, mode="PY")
    v = np.array([0.5, 1.5])
    np.testing.assert_allclose(f(1, v), np.exp(v))
    assert CALLS == Counter({"then": 1})
    np.testing.assert_allclose(f(0, v), np.sin(v) * 2)
    np.testing.assert_allclose(f(0, v), np.sin(v) * 2)
    assert CALLS == Counter({"then": 1, "else": 2})


def test_untaken_branch_that_would_fail_is_never_run() -> None:
    c = T.iscalar("c")
    x = T.dvector("x")
    f = graphc.function([c, x], graphc.ifelse(c, x + 1.0, Explode()(x) * 2.0), mode="PY")
    np.testing.assert_array_equal(f(1, np.zeros(2)), [1.0, 1.0])
    with pytest.raises(NodeRuntimeError, match="must not run"):
        f(0, np.zeros(2))
    # A run-time shape error in the untaken branch does not matter either.
    y = T.dvector("y")
    g = graphc.function([c, x, y], graphc.ifelse(c, x, x + y), mode="PY")
    np.testing.assert_array_equal(g(1, np.ones(2), np.ones(3)), [1.0, 1.0])
    with pytest.raises(ValueError):
        g(0, np.ones(2), np.ones(3))


def test_ifelse_lists_are_lazy_too() -> None:
    c = T.iscalar("c")
    x = T.dvector("x")
    outs = graphc.ifelse(c, [Counted("a1")(x), Counted("a2")(x) * 2.0],
                         [Counted("b1")(x), Counted("b2")(x) * 3.0])
    f = graphc.function([c, x], outs, mode="PY")
    f(0, np.ones(2))
    assert CALLS == Counter({"b1": 1, "b2": 1})


def test_work_shared_by_condition_and_branch_runs_once() -> None:
    x = T.dvector("x")
    shared_work = Counted("shared")(x)
    out = graphc.ifelse(shared_work.sum() > 0, shared_work * 2.0, Counted("else")(x))
    f = graphc.function([x], out, mode="PY")
    np.testing.assert_array_equal(f(np.ones(2)), [2.0, 2.0])
    assert CALLS == Counter({"shared": 1})


def test_switch_evaluates_both_branches_elementwise() -> None:
    x = T.dvector("x")
    out = T.switch(x > 0, Counted("pos")(x), Counted("neg")(x) * -1.0)
    f = graphc.function([x], out, mode="PY")
    v = np.array([-2.0, 3.0, -0.5])
    np.testing.assert_array_equal(f(v), np.abs(v))
    assert CALLS == Counter({"pos": 1, "neg": 1})
    # Even when every element picks one side, the other side is computed.
    f(np.array([1.0, 2.0]))
    assert CALLS == Counter({"pos": 2, "neg": 2})


# ---------------------------------------------------------------------------------------
# gradients through ifelse

_r = np.random.default_rng(11)

GRAD_CASES: dict[str, tuple[Callable, list[np.ndarray]]] = {
    "ifelse": (lambda x, y: graphc.ifelse(x.sum() > 0, x * y, T.sin(y)),
               [_r.uniform(0.5, 1.0, (2, 3)), _r.standard_normal((2, 3))]),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_grad(name: str) -> None:
    fn, inputs = GRAD_CASES[name]
    verify_grad(fn, inputs)


def test_grad_through_the_else_branch() -> None:
    fn, (x, y) = GRAD_CASES["ifelse"]
    verify_grad(fn, [-x, y])


def test_grad_of_ifelse_values() -> None:
    c = T.iscalar("c")
    x = T.dvector("x")
    out = graphc.ifelse(c, Counted("then")(x) ** 2, Counted("else")(x) * 3.0)
    g = graphc.grad(out.sum(), x)
    assert g.type.shape == (None,) and g.dtype == "float64"
    f = graphc.function([c, x], g, mode="PY")
    v = np.array([1.0, -2.0])
    np.testing.assert_array_equal(f(1, v), 2 * v)
    np.testing.assert_array_equal(f(0, v), [3.0, 3.0])


def test_grad_of_ifelse_with_several_outputs() -> None:
    c = T.iscalar("c")
    x, y = T.dscalar("x"), T.dscalar("y")
    a, b = graphc.ifelse(c, [x * y, x], [y, x * x])
    gx, gy = graphc.grad(a + 10.0 * b, [x, y])
    f = graphc.function([c, x, y], [gx, gy], mode="PY")
    assert [float(v) for v in f(1, 2.0, 3.0)] == [3.0 + 10.0, 2.0]
    assert [float(v) for v in f(0, 2.0, 3.0)] == [10.0 * 2 * 2.0, 1.0]


# ---------------------------------------------------------------------------------------
# jacobian and hessian


def test_hessian_of_quadratic_form_is_a_plus_a_transpose() -> None:
    x, A = T.dvector("x"), T.dmatrix("A")
    cost = T.dot(x, T.dot(A, x))
    H = hessian(cost, x)
    assert H.ndim == 2 and H.dtype == "float64"
    f = graphc.function([x, A], H, mode="PY")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))  # deliberately not symmetric
    for point in (np.zeros(4), rng.standard_normal(4)):
        np.testing.assert_allclose(f(point, a), a + a.T, rtol=1e-12, atol=1e-12)


def test_hessian_of_several_vectors_and_errors() -> None:
    x, y = T.dvector("x"), T.dvector("y")
    cost = (x**3).sum() + (x * y).sum() + (y**2).sum()
    hx, hy = hessian(cost, [x, y])
    vx, vy = np.array([1.0, -2.0, 0.5]), np.array([3.0, 4.0, 5.0])
    gx, gy = graphc.function([x, y], [hx, hy], mode="PY")(vx, vy)
    np.testing.assert_allclose(gx, np.diag(6 * vx))
    np.testing.assert_allclose(gy, 2 * np.eye(3))
    with pytest.raises(TypeError, match="vectors"):
        hessian((T.dmatrix("m") ** 2).sum(), T.dmatrix("m2"))


def _vector_function(x: Variable, W: np.ndarray) -> Variable:
    return T.tanh(T.dot(as_tensor_variable(W), x)) + x[0] * T.exp(x[1:].sum())


def test_jacobian_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    W = rng.standard_normal((4, 3))
    x = T.dvector("x")
    J = jacobian(_vector_function(x, W), x)
    assert J.ndim == 2
    point = rng.standard_normal(3)
    got = graphc.function([x], J, mode="PY")(point)
    f = graphc.function([x], _vector_function(x, W), mode="PY")
    assert got.shape == (4, 3)
    for i in range(4):
        (numeric,) = numeric_grad(lambda v, i=i: float(f(v)[i]), [point.copy()], 1e-6)
        np.testing.assert_allclose(got[i], numeric, rtol=1e-6, atol=1e-7)


def test_jacobian_of_several_inputs_and_of_a_scalar() -> None:
    x, y = T.dvector("x"), T.dvector("y")
    jx, jy = jacobian(x * y, [x, y])
    vx, vy = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    got_x, got_y = graphc.function([x, y], [jx, jy], mode="PY")(vx, vy)
    np.testing.assert_allclose(got_x, np.diag(vy))
    np.testing.assert_allclose(got_y, np.diag(vx))
    # The jacobian of a scalar is its gradient.
    js = jacobian((x**2).sum(), x)
    np.testing.assert_allclose(graphc.function([x], js, mode="PY")(vx), 2 * vx)
