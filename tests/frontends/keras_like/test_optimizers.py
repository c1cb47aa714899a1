"""Each optimizer's first steps against a NumPy transcription of the Keras 2 update rule."""

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from frontends.keras_like import backend as K
from frontends.keras_like import optimizers

EPS = 1e-7
A = np.array([[1.0, 2.0, 0.5], [3.0, 0.2, 1.5]])
B = np.array([[0.3, -1.0, 2.0], [-0.5, 0.1, -2.0]])
P0 = np.array([[0.5, -0.3, 1.2], [-0.8, 2.0, 0.1]])


def _grad(p):
    return A * p + B  # of the quadratic loss sum(A * p**2 / 2 + B * p)


def _lr(lr, decay, k):
    return lr / (1.0 + decay * k)


def ref_sgd(lr=0.01, momentum=0.0, nesterov=False, decay=0.0):
    p, v = P0.copy(), np.zeros_like(P0)
    for k in range(4):
        g = _grad(p)
        a = _lr(lr, decay, k)
        v = momentum * v - a * g
        p = p + momentum * v - a * g if nesterov else p + v
        yield p


def ref_rmsprop(lr=0.001, rho=0.9, decay=0.0):
    p, acc = P0.copy(), np.zeros_like(P0)
    for k in range(4):
        g = _grad(p)
        acc = rho * acc + (1 - rho) * g ** 2
        p = p - _lr(lr, decay, k) * g / (np.sqrt(acc) + EPS)
        yield p


def ref_adagrad(lr=0.01, decay=0.0):
    p, acc = P0.copy(), np.zeros_like(P0)
    for k in range(4):
        g = _grad(p)
        acc = acc + g ** 2
        p = p - _lr(lr, decay, k) * g / (np.sqrt(acc) + EPS)
        yield p


def ref_adadelta(lr=1.0, rho=0.95, decay=0.0):
    p, acc, dacc = P0.copy(), np.zeros_like(P0), np.zeros_like(P0)
    for k in range(4):
        g = _grad(p)
        acc = rho * acc + (1 - rho) * g ** 2
        upd = g * np.sqrt(dacc + EPS) / np.sqrt(acc + EPS)
        p = p - _lr(lr, decay, k) * upd
        dacc = rho * dacc + (1 - rho) * upd ** 2
        yield p


def ref_adam(lr=0.001, beta_1=0.9, beta_2=0.999, decay=0.0, amsgrad=False):
    p, m, v, vhat = P0.copy(), np.zeros_like(P0), np.zeros_like(P0), np.zeros_like(P0)
    for k in range(4):
        g, t = _grad(p), k + 1
        lr_t = _lr(lr, decay, k) * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g ** 2
        vhat = np.maximum(vhat, v)
        p = p - lr_t * m / (np.sqrt(vhat if amsgrad else v) + EPS)
        yield p


def ref_adamax(lr=0.002, beta_1=0.9, beta_2=0.999, decay=0.0):
    p, m, u = P0.copy(), np.zeros_like(P0), np.zeros_like(P0)
    for k in range(4):
        g, t = _grad(p), k + 1
        m = beta_1 * m + (1 - beta_1) * g
        u = np.maximum(beta_2 * u, np.abs(g))
        p = p - _lr(lr, decay, k) / (1 - beta_1 ** t) * m / (u + EPS)
        yield p


def ref_nadam(lr=0.002, beta_1=0.9, beta_2=0.999, schedule_decay=0.004):
    p, m, v, m_schedule = P0.copy(), np.zeros_like(P0), np.zeros_like(P0), 1.0
    for k in range(4):
        g, t = _grad(p), k + 1
        mc_t = beta_1 * (1 - 0.5 * 0.96 ** (t * schedule_decay))
        mc_t1 = beta_1 * (1 - 0.5 * 0.96 ** ((t + 1) * schedule_decay))
        m_schedule_new = m_schedule * mc_t
        m_schedule_next = m_schedule * mc_t * mc_t1
        m_schedule = m_schedule_new
        g_prime = g / (1 - m_schedule_new)
        m = beta_1 * m + (1 - beta_1) * g
        m_prime = m / (1 - m_schedule_next)
        v = beta_2 * v + (1 - beta_2) * g ** 2
        v_prime = v / (1 - beta_2 ** t)
        m_bar = (1 - mc_t) * g_prime + mc_t1 * m_prime
        p = p - lr * m_bar / (np.sqrt(v_prime) + EPS)
        yield p


def _run(opt, steps=4):
    p = K.variable(P0, name="p")
    loss = T.sum(T.constant(A) * T.sqr(p) / 2 + T.constant(B) * p)
    step = graphc.function([], loss, updates=opt.get_updates(loss, [p]))
    for _ in range(steps):
        step()
        yield p.get_value()


CASES = [
    ("SGD", {}, ref_sgd, {}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}, ref_sgd, {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "decay": 0.1}, ref_sgd,
     {"lr": 0.1, "momentum": 0.9, "nesterov": True, "decay": 0.1}),
    ("SGD", {"learning_rate": 0.05, "decay": 1e-2}, ref_sgd, {"lr": 0.05, "decay": 1e-2}),
    ("RMSprop", {}, ref_rmsprop, {}),
    ("RMSprop", {"lr": 0.01, "rho": 0.8, "decay": 0.5}, ref_rmsprop,
     {"lr": 0.01, "rho": 0.8, "decay": 0.5}),
    ("Adagrad", {}, ref_adagrad, {}),
    ("Adagrad", {"lr": 0.5, "decay": 0.2}, ref_adagrad, {"lr": 0.5, "decay": 0.2}),
    ("Adadelta", {}, ref_adadelta, {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.9}, ref_adadelta, {"lr": 0.5, "rho": 0.9}),
    ("Adam", {}, ref_adam, {}),
    ("Adam", {"lr": 0.1, "beta_1": 0.8, "beta_2": 0.99, "decay": 0.1}, ref_adam,
     {"lr": 0.1, "beta_1": 0.8, "beta_2": 0.99, "decay": 0.1}),
    ("Adam", {"lr": 0.1, "amsgrad": True}, ref_adam, {"lr": 0.1, "amsgrad": True}),
    ("Adamax", {}, ref_adamax, {}),
    ("Adamax", {"lr": 0.05, "decay": 0.1}, ref_adamax, {"lr": 0.05, "decay": 0.1}),
    ("Nadam", {}, ref_nadam, {}),
    ("Nadam", {"lr": 0.01, "beta_1": 0.8}, ref_nadam, {"lr": 0.01, "beta_1": 0.8}),
]


@pytest.mark.parametrize("name, kwargs, reference, ref_kwargs", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_first_steps_match_numpy(float64, name, kwargs, reference, ref_kwargs):
    opt = getattr(optimizers, name)(**kwargs)
    for k, (got, expected) in enumerate(zip(_run(opt), reference(**ref_kwargs))):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14, err_msg=f"step {k + 1}")
    assert int(opt.iterations.get_value()) == 4



def test_float32_adam_close_to_float64_reference():
    import graphc as g

    assert g.config.floatX == "float32"
    got = list(_run(optimizers.Adam(lr=0.01)))
    for a, b in zip(got, ref_adam(lr=0.01)):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_keras_defaults():
    assert optimizers.SGD().get_config()["learning_rate"] == pytest.approx(0.01)
    assert optimizers.get("rmsprop").get_config()["learning_rate"] == pytest.approx(0.001)
    assert optimizers.get("adagrad").get_config()["learning_rate"] == pytest.approx(0.01)
    assert optimizers.get("adadelta").get_config()["learning_rate"] == pytest.approx(1.0)
    adam = optimizers.get("adam").get_config()
    assert adam["learning_rate"] == pytest.approx(0.001)
    assert (adam["beta_1"], adam["beta_2"], adam["epsilon"]) == (0.9, 0.999, 1e-7)
    assert optimizers.get("adamax").get_config()["learning_rate"] == pytest.approx(0.002)
    assert optimizers.get("nadam").get_config()["learning_rate"] == pytest.approx(0.002)


def test_clipnorm_and_clipvalue(float64):
    g0 = _grad(P0)
    opt = optimizers.SGD(lr=1.0, clipnorm=0.5)
    got = next(_run(opt, 1))
    np.testing.assert_allclose(got, P0 - g0 * 0.5 / np.linalg.norm(g0), rtol=1e-12)
    opt = optimizers.SGD(lr=1.0, clipvalue=0.5)
    np.testing.assert_allclose(next(_run(opt, 1)), P0 - np.clip(g0, -0.5, 0.5), rtol=1e-12)
    opt = optimizers.SGD(lr=1.0, global_clipnorm=100.0)  # large enough: no change
    np.testing.assert_allclose(next(_run(opt, 1)), P0 - g0, rtol=1e-12)


def test_learning_rate_is_shared_and_settable(float64):
    opt = optimizers.SGD(lr=0.1)
    steps = _run(opt)
    first = next(steps)
    np.testing.assert_allclose(first, P0 - 0.1 * _grad(P0))
    opt.lr = 0.0  # Keras 3 style assignment; no recompilation
    np.testing.assert_allclose(next(steps), first)
    K.set_value(opt.learning_rate, 1.0)  # Keras 2 style
    np.testing.assert_allclose(next(steps), first - _grad(first))
    assert float(opt.lr) == 1.0


def test_state_get_set_weights_and_errors(float64):
    opt = optimizers.Adam()
    list(_run(opt, 2))
    state = opt.get_weights()
    assert len(state) == 3 and int(state[0]) == 2  # iterations, m, v
    opt.set_weights([np.array(0)] + [np.zeros_like(s) for s in state[1:]])
    assert int(opt.iterations.get_value()) == 0
    with pytest.raises(ValueError):
        opt.set_weights(state[:1])
    with pytest.raises(TypeError, match="unexpected"):
        optimizers.SGD(lr=0.1, momentun=0.9)
    with pytest.raises(TypeError, match="several names"):
        optimizers.SGD(lr=0.1, learning_rate=0.2)
    with pytest.raises(ValueError):
        optimizers.get("adamw")
    cfg = optimizers.serialize(optimizers.SGD(lr=0.5, momentum=0.9, nesterov=True))
    back = optimizers.deserialize(cfg)
    assert isinstance(back, optimizers.SGD) and back.nesterov and back.momentum == 0.9


def test_learning_rate_may_be_positional() -> None:
    from frontends.keras_like import optimizers

    assert float(optimizers.Adam(0.01).learning_rate.get_value()) == pytest.approx(0.01)
    assert float(optimizers.SGD(0.5, momentum=0.9).learning_rate.get_value()) == pytest.approx(0.5)
    with pytest.raises(TypeError, match="only positional"):
        optimizers.SGD(0.1, 0.9)
    with pytest.raises(TypeError, match="given twice"):
        optimizers.Adam(0.1, lr=0.2)
