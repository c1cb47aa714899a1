"""The logistic-regression example of DESIGN.md learns separable data in mode='PY'."""

import subprocess
import sys

import numpy as np

import graphc
import graphc.tensor as T
from graphc.__main__ import make_blobs


def test_logistic_regression_reaches_95_percent() -> None:
    x_data, y_data = make_blobs(600, 10, 3, seed=1)
    x, y = T.matrix("x"), T.ivector("y")
    W = graphc.shared(np.zeros((10, 3), "float32"), name="W")
    b = graphc.shared(np.zeros(3, "float32"), name="b")
    p = T.nnet.softmax(T.dot(x, W) + b)
    loss = T.nnet.categorical_crossentropy(p, y).mean()
    gW, gb = graphc.grad(loss, [W, b])
    train = graphc.function([x, y], loss, updates=[(W, W - 0.1 * gW), (b, b - 0.1 * gb)], mode="PY")
    predict = graphc.function([x], T.argmax(p, axis=1), mode="PY")
    first = train(x_data, y_data)
    for _ in range(100):
        last = train(x_data, y_data)
    assert last < first / 2
    assert np.mean(predict(x_data) == y_data) >= 0.95


def test_demo_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "graphc"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "training accuracy" in result.stdout
    accuracy = float(result.stdout.split("training accuracy:")[1].split()[0])
    assert accuracy >= 0.9
    assert "Elemwise" in result.stdout or "Fused" in result.stdout
