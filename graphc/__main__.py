"""``python -m graphc``: the demo of README.md.

Builds the logistic-regression graph of DESIGN.md, compiles a training step,
trains it on generated data, and prints the loss falling, the accuracy and the
compiled graph.
"""

from __future__ import annotations

import time

import numpy as np

import graphc
import graphc.tensor as T


def make_blobs(n: int, n_features: int, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs around random centres: separable enough to learn quickly."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(n_classes, n_features))
    labels = rng.integers(0, n_classes, size=n)
    points = centres[labels] + rng.normal(0.0, 1.0, size=(n, n_features))
    return points.astype("float32"), labels.astype("int32")


def build_logistic_regression(n_features: int, n_classes: int, lr: float = 0.1):
    x = T.matrix("x")
    y = T.ivector("y")
    W = graphc.shared(np.zeros((n_features, n_classes), "float32"), name="W")
    b = graphc.shared(np.zeros(n_classes, "float32"), name="b")
    p = T.nnet.softmax(T.dot(x, W) + b)
    loss = T.nnet.categorical_crossentropy(p, y).mean()
    gW, gb = graphc.grad(loss, [W, b])
    train = graphc.function([x, y], loss, updates=[(W, W - lr * gW), (b, b - lr * gb)], name="train")
    predict = graphc.function([x], T.argmax(p, axis=1), name="predict")
    return train, predict


def main() -> None:
    x_data, y_data = make_blobs(2000, 20, 4)
    start = time.perf_counter()
    train, predict = build_logistic_regression(20, 4)
    print(f"compiled the training step and the predictor in {time.perf_counter() - start:.2f} s")
    for epoch in range(20):
        losses = [
            train(x_data[i: i + 100], y_data[i: i + 100]) for i in range(0, len(x_data), 100)
        ]
        if epoch % 4 == 0 or epoch == 19:
            print(f"epoch {epoch:2d}  loss {np.mean(losses):.4f}")
    accuracy = float(np.mean(predict(x_data) == y_data))
    print(f"training accuracy: {accuracy:.3f}")
    print("\nthe compiled training step:")
    graphc.printing.debugprint(train)


if __name__ == "__main__":
    main()
