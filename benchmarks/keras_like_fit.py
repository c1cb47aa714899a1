"""Time ``fit`` of the tutorial models: graphc's keras_like frontend against a hand-written
NumPy training loop (always) and Keras 3 on the JAX backend (when installed).

    python benchmarks/keras_like_fit.py            # full sizes (the tutorials' settings)
    python benchmarks/keras_like_fit.py --quick    # fewer epochs

Each run reports the wall time of ``fit`` (first epoch included, so graph building
and compilation count) and the median time of the later epochs (steady state),
and the ratio of each to graphc's. Same data, batch size, epochs and optimizer.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- the problems ---------------------------------------------------------------------------
def regression_toy() -> dict:
    rng = np.random.default_rng(0)
    x = rng.random((10000, 10)).astype("float32")
    y = np.sin((x ** 2).sum(1)).astype("float32")[:, None]
    return dict(name="regression toy (SGD, mse)", x=x, y=y, units=[20, 30, 1],
                acts=["relu", "relu", "linear"], loss="mse", opt="sgd", lr=0.01, batch=32, epochs=10)


def classification_toy() -> dict:
    rng = np.random.default_rng(1)
    x = rng.random((10000, 10)).astype("float32")
    y = (np.sin((x ** 2).sum(1)) >= 0).astype("float32")[:, None]
    return dict(name="classification toy (Adam, bce)", x=x, y=y, units=[100, 100, 1],
                acts=["relu", "relu", "sigmoid"], loss="binary_crossentropy", opt="adam", lr=0.001,
                batch=32, epochs=10)


def digits() -> dict | None:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    d = load_digits()
    x = (d.data / 16.0).astype("float32")
    y = np.eye(10, dtype="float32")[d.target]
    return dict(name="digits softmax (SGD+nesterov, cce)", x=x, y=y, units=[64, 10],
                acts=["relu", "softmax"], loss="categorical_crossentropy", opt="sgd", lr=0.1,
                batch=32, epochs=15)


# -- graphc ----------------------------------------------------------------------------------
def run_graphc(p: dict) -> list[float]:
    from frontends.keras_like import callbacks, optimizers
    from frontends.keras_like.layers import Dense
    from frontends.keras_like.models import Sequential

    layers = [Dense(p["units"][0], activation=p["acts"][0], input_dim=p["x"].shape[1])]
    layers += [Dense(u, activation=a) for u, a in zip(p["units"][1:], p["acts"][1:])]
    model = Sequential(layers)
    opt = (optimizers.SGD(lr=p["lr"], momentum=0.9 if p["units"][-1] == 10 else 0.0,
                          nesterov=p["units"][-1] == 10)
           if p["opt"] == "sgd" else optimizers.Adam(lr=p["lr"]))
    model.compile(optimizer=opt, loss=p["loss"])
    times = _EpochTimer(callbacks.Callback)
    model.fit(p["x"], p["y"], batch_size=p["batch"], epochs=p["epochs"], verbose=0,
              callbacks=[times], shuffle=True)
    return times.times


def _EpochTimer(base: type):  # noqa: N802  (builds a callback class for either library)
    class EpochTimer(base):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_train_begin(self, logs=None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:
            now = time.perf_counter()
            self.times.append(now - self.start)
            self.start = now

    return EpochTimer()


# -- Keras 3 / JAX -------------------------------------------------------------------------------
def run_keras(p: dict) -> list[float] | None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        return None
    model = keras.Sequential([keras.Input(shape=(p["x"].shape[1],))] + [
        keras.layers.Dense(u, activation=a) for u, a in zip(p["units"], p["acts"])])
    opt = (keras.optimizers.SGD(learning_rate=p["lr"], momentum=0.9 if p["units"][-1] == 10 else 0.0,
                                nesterov=p["units"][-1] == 10)
           if p["opt"] == "sgd" else keras.optimizers.Adam(learning_rate=p["lr"]))
    model.compile(optimizer=opt, loss=p["loss"])
    times = _EpochTimer(keras.callbacks.Callback)
    model.fit(p["x"], p["y"], batch_size=p["batch"], epochs=p["epochs"], verbose=0,
              callbacks=[times], shuffle=True)
    return times.times


# -- NumPy: the same networks, forward and backward written out by hand ------------------------
def run_numpy(p: dict) -> list[float]:
    rng = np.random.default_rng(0)
    sizes = [p["x"].shape[1], *p["units"]]
    Ws = [rng.uniform(-1, 1, (a, b)).astype("float32") * np.sqrt(6 / (a + b)).astype("float32")
          for a, b in zip(sizes, sizes[1:])]
    bs = [np.zeros(b, "float32") for b in sizes[1:]]
    params = [q for pair in zip(Ws, bs) for q in pair]
    step = _numpy_optimizer(p, params)
    x, y = p["x"], p["y"]
    times = []
    for _ in range(p["epochs"]):
        start = time.perf_counter()
        order = rng.permutation(len(x))
        for s in range(0, len(x), p["batch"]):
            idx = order[s:s + p["batch"]]
            grads = _numpy_grads(p, Ws, bs, x[idx], y[idx])
            step(params, grads)
        times.append(time.perf_counter() - start)
    return times


def _numpy_grads(p: dict, Ws: list, bs: list, xb: np.ndarray, yb: np.ndarray) -> list:
    acts = [xb]
    for W, b, a in zip(Ws, bs, p["acts"]):
        z = acts[-1] @ W + b
        if a == "relu":
            z = np.maximum(z, 0)
        elif a == "sigmoid":
            z = 1 / (1 + np.exp(-z))
        elif a == "softmax":
            e = np.exp(z - z.max(1, keepdims=True))
            z = e / e.sum(1, keepdims=True)
        acts.append(z)
    out, n = acts[-1], len(xb)
    # with sigmoid+bce and softmax+cce the gradient w.r.t. the logits is (out - y) / n
    delta = (2 * (out - yb) / out.size) if p["loss"] == "mse" else (out - yb) / (
        n * (out.shape[1] if p["loss"] == "binary_crossentropy" else 1))
    grads: list = []
    for i in reversed(range(len(Ws))):
        grads = [acts[i].T @ delta, delta.sum(0)] + grads
        if i:
            delta = (delta @ Ws[i].T) * (acts[i] > 0)
    return grads


def _numpy_optimizer(p: dict, params: list) -> Callable:
    if p["opt"] == "sgd":
        mom = 0.9 if p["units"][-1] == 10 else 0.0
        vel = [np.zeros_like(q) for q in params]

        def sgd(params: list, grads: list) -> None:
            for q, g, v in zip(params, grads, vel):
                v *= mom
                v -= p["lr"] * g
                q += mom * v - p["lr"] * g if mom else v

        return sgd
    m = [np.zeros_like(q) for q in params]
    v = [np.zeros_like(q) for q in params]
    t = [0]

    def adam(params: list, grads: list) -> None:
        t[0] += 1
        lr_t = p["lr"] * np.sqrt(1 - 0.999 ** t[0]) / (1 - 0.9 ** t[0])
        for q, g, mq, vq in zip(params, grads, m, v):
            mq[:] = 0.9 * mq + 0.1 * g
            vq[:] = 0.999 * vq + 0.001 * g * g
            q -= lr_t * mq / (np.sqrt(vq) + 1e-7)

    return adam


# -- report ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs per model")
    args = parser.parse_args()
    problems = [p for p in (regression_toy(), classification_toy(), digits()) if p is not None]
    print(f"{'model':38s} {'runner':10s} {'fit s':>8s} {'epoch s':>9s} {'fit/graphc':>11s} "
          f"{'epoch/graphc':>13s}")
    for p in problems:
        if args.quick:
            p["epochs"] = 3
        results = {"graphc": run_graphc(p), "numpy": run_numpy(p)}
        keras_times = run_keras(p)
        if keras_times is not None:
            results["keras-jax"] = keras_times
        base_total = sum(results["graphc"])
        base_epoch = float(np.median(results["graphc"][1:] or results["graphc"]))
        for runner, times in results.items():
            total, epoch = sum(times), float(np.median(times[1:] or times))
            print(f"{p['name']:38s} {runner:10s} {total:8.2f} {epoch:9.3f} {total / base_total:11.2f} "
                  f"{epoch / base_epoch:13.2f}")
    if "keras-jax" not in results:
        print("(Keras 3 is not installed: pip install keras jax to compare with it)")


if __name__ == "__main__":
    main()
