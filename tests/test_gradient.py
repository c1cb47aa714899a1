"""graphc.grad: API semantics, an MLP against hand-written backprop, Hessians."""

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.gradient import DisconnectedInputError, GradientError, hessian, jacobian, verify_grad


def test_grad_of_simple_expression() -> None:
    x = T.dscalar("x")
    g = graphc.grad(x**3 + 2.0 * x, x)
    f = graphc.function([x], g, mode="PY")
    assert f(2.0) == pytest.approx(3 * 4 + 2)


def test_grad_keeps_float32() -> None:
    x = T.vector("x")
    g = graphc.grad((x * x).sum(), x)
    assert g.dtype == "float32"


def test_cost_must_be_a_float_scalar() -> None:
    x = T.vector("x")
    with pytest.raises(TypeError, match="scalar"):
        graphc.grad(x * 2.0, x)
    with pytest.raises(TypeError, match="integer or boolean cost"):
        graphc.grad((x > 0).sum(), x)


def test_disconnected_inputs() -> None:
    x, y = T.scalar("x"), T.scalar("y")
    with pytest.raises(DisconnectedInputError, match="does not depend on y"):
        graphc.grad(x * 2.0, y)
    with pytest.warns(UserWarning):
        g = graphc.grad(x * 2.0, y, disconnected_inputs="warn")
    assert graphc.function([y], g, mode="PY")(3.0) == 0.0
    g = graphc.grad(x * 2.0, [x, y], disconnected_inputs="ignore")
    assert len(g) == 2


def test_consider_constant_and_known_grads() -> None:
    x = T.dscalar("x")
    y = x * x
    z = y * x
    g = graphc.grad(z, x, consider_constant=[y])
    assert graphc.function([x], g, mode="PY")(3.0) == pytest.approx(9.0)
    h = graphc.grad(None, x, known_grads={y: T.constant(np.float64(2.0))})
    assert graphc.function([x], h, mode="PY")(3.0) == pytest.approx(12.0)


def test_wrt_intermediate_and_its_ancestor() -> None:
    x = T.dscalar("x")
    h = x * 3.0
    cost = h * h
    gh, gx = graphc.grad(cost, [h, x])
    f = graphc.function([x], [gh, gx], mode="PY")
    a, b = f(2.0)
    assert a == pytest.approx(12.0) and b == pytest.approx(36.0)


def test_comparison_gives_zero_gradient() -> None:
    x = T.dvector("x")
    cost = (T.cast(x > 0, "float64") * x).sum()
    g = graphc.function([x], graphc.grad(cost, x), mode="PY")(np.array([-1.0, 2.0]))
    np.testing.assert_allclose(g, [0.0, 1.0])


def test_grad_of_grad() -> None:
    x = T.dscalar("x")
    g1 = graphc.grad(T.sin(x) * x, x)
    g2 = graphc.grad(g1, x)
    v = 0.7
    assert graphc.function([x], g2, mode="PY")(v) == pytest.approx(2 * np.cos(v) - v * np.sin(v))


def _numpy_mlp_backprop(x, y, W1, b1, W2, b2):
    h_pre = x @ W1 + b1
    h = np.tanh(h_pre)
    logits = h @ W2 + b2
    e = np.exp(logits - logits.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    n = len(y)
    d_logits = p.copy()
    d_logits[np.arange(n), y] -= 1
    d_logits /= n
    gW2 = h.T @ d_logits
    gb2 = d_logits.sum(0)
    dh = d_logits @ W2.T * (1 - h**2)
    gW1 = x.T @ dh
    gb1 = dh.sum(0)
    return gW1, gb1, gW2, gb2


def test_mlp_gradients_match_numpy_backprop(rng) -> None:
    x, y = T.dmatrix("x"), T.ivector("y")
    shapes = [(5, 7), (7,), (7, 3), (3,)]
    values = [rng.normal(size=s) for s in shapes]
    params = [graphc.shared(v, name=n) for v, n in zip(values, ["W1", "b1", "W2", "b2"])]
    W1, b1, W2, b2 = params
    p = T.nnet.softmax(T.dot(T.tanh(T.dot(x, W1) + b1), W2) + b2)
    loss = T.nnet.categorical_crossentropy(p, y).mean()
    f = graphc.function([x, y], graphc.grad(loss, params), mode="PY")
    xv = rng.normal(size=(11, 5))
    yv = rng.integers(0, 3, size=11).astype("int32")
    for got, want in zip(f(xv, yv), _numpy_mlp_backprop(xv, yv, *values)):
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-10)


def test_hessian_of_quadratic_form(rng) -> None:
    A = rng.normal(size=(4, 4))
    x = T.dvector("x")
    cost = T.dot(x, T.dot(T.constant(A), x))
    H = graphc.function([x], hessian(cost, x), mode="PY")(rng.normal(size=4))
    np.testing.assert_allclose(H, A + A.T, rtol=1e-12)


def test_jacobian_matches_finite_differences(rng) -> None:
    x = T.dvector("x")
    y = T.sin(x) * x.sum()
    J = graphc.function([x], jacobian(y, x), mode="PY")
    v = rng.normal(size=3)
    eps = 1e-6
    numeric = np.stack(
        [(np.sin(v + eps * e) * (v + eps * e).sum() - np.sin(v - eps * e) * (v - eps * e).sum())
         / (2 * eps) for e in np.eye(3)],
        axis=1,
    )
    np.testing.assert_allclose(J(v), numeric, rtol=1e-6, atol=1e-8)


def test_verify_grad_catches_a_wrong_gradient() -> None:
    from graphc.graph.basic import Apply
    from graphc.graph.op import Op
    from graphc.graph.type import TensorType

    class WrongSquare(Op):
        def make_node(self, x):
            return Apply(self, [x], [TensorType(x.dtype, x.type.shape)])

        def perform(self, node, inputs):
            return [inputs[0] ** 2]

        def grad(self, inputs, grads):
            return [grads[0] * inputs[0] * 3.0]  # should be 2

    with pytest.raises(GradientError, match="input 0"):
        verify_grad(lambda a: WrongSquare()(a), [np.array([1.0, 2.0])])
    verify_grad(lambda a: a * a, [np.array([1.0, 2.0])])


def test_integer_input_gets_zero_gradient() -> None:
    x, k = T.dvector("x"), T.iscalar("k")
    cost = (x * k).sum()
    g = graphc.grad(cost, k)
    assert g.dtype == "float64"
    f = graphc.function([x, k], g, mode="PY", on_unused_input="ignore")
    assert f(np.ones(2), 3) == 0.0
